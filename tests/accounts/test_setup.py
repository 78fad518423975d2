"""`make run`'s console: each line once, and no traceback for an ordinary 403."""

import subprocess
import sys

from tests.accounts.catalogs import ROOT

SCRIPT = """
import logging
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.utils.log import log_response
from django.http import HttpResponse, HttpResponseServerError

request = RequestFactory().get("/dashboard/")
try:
    raise PermissionDenied("agents do not read KPIs")
except PermissionDenied as exc:
    log_response("Forbidden (Permission denied): %s", request.path, response=HttpResponse(status=403),
                 request=request, exception=exc)
try:
    raise RuntimeError("a real bug")
except RuntimeError as exc:
    log_response("Internal Server Error: %s", "/boom/", response=HttpResponseServerError(),
                 request=request, exception=exc)
logging.getLogger("django.channels.server").info("HTTP GET /login/ 200")
"""


def run_django(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "", "DATABASE_URL": "sqlite:///:memory:"},
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_403_is_one_line_a_500_keeps_its_traceback_and_nothing_is_doubled():
    log = run_django(SCRIPT)
    lines = log.splitlines()
    assert lines.count("Forbidden (Permission denied): /dashboard/") == 1
    assert "agents do not read KPIs" not in log  # no traceback for the 403
    assert lines.count("Internal Server Error: /boom/") == 1
    assert "RuntimeError: a real bug" in log and log.count("Traceback") == 1
    assert lines.count("HTTP GET /login/ 200") == 1  # runserver's access log, once
    # The development-secret warning: once (runserver's reloader child stays quiet).
    assert log.count("DJANGO_SECRET_KEY is not set") == 1
