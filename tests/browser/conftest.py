"""A real ASGI server (uvicorn, WebSockets included) and a real Chromium for end-to-end tests.

The server runs in a subprocess on the test database and the test Redis db, so
the browser, the server, the Celery worker (in this process) and the test all
meet in the same PostgreSQL and on the same channel layer.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

# Playwright's sync API keeps an event loop in this thread; the ORM calls the
# tests make between browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("HELPDESK_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def asgi_process(*, started: list | None = None, **env_overrides):
    """uvicorn serving the app on the test database; `env_overrides` change its
    environment (None removes a variable: REDIS_URL=None is the embedded default's
    eager Celery and in-memory channel layer). Yields the base URL; `started`, if
    given, gets the server's process (a test that kills a replica)."""
    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}{':' + db['PASSWORD'] if db['PASSWORD'] else ''}"
            f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_CONN_MAX_AGE": "0",
        "DJANGO_DEBUG": "true",
        "DJANGO_ALLOWED_HOSTS": "*",
        # Absolute links the server hands out (the web chat's frame URL) point at this server.
        "HELPDESK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    log_path = Path(tempfile.gettempdir()) / f"helpdesk-browser-server-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "helpdesk.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if started is not None:
        started.append(process)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass  # not listening yet: poll again until the deadline
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            raise RuntimeError("uvicorn did not start:\n" + log_path.read_text())
        time.sleep(0.2)
    try:
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def asgi_server(django_db_setup, django_db_blocker):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    with asgi_process() as base:
        yield base


@pytest.fixture(scope="module")
def chromium():
    # Module scope: Playwright's sync API holds an event loop on this thread while
    # it runs, which async tests in other modules must not find still running.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_contexts(chromium, transactional_db):
    """Fresh browser profiles for one test; closed (sockets too) before the database is flushed."""
    made = []

    def new(**kwargs):
        context = chromium.new_context(
            viewport=kwargs.pop("viewport", {"width": 1280, "height": 860}), **kwargs
        )
        context.set_default_timeout(15000)
        made.append(context)
        return context

    yield new
    for context in made:
        context.close()
    _wait_for_quiet_database()


def _wait_for_quiet_database(timeout: float = 5.0) -> None:
    """Let the server finish what the closed sockets set off (presence updates on
    disconnect) before the flush: its TRUNCATE would deadlock with their row locks."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
            busy = cursor.fetchone()[0]
        quiet = quiet + 1 if busy == 0 else 0


def off_loop(fn, *args, **kwargs):
    """Run a write from the test in a plain thread: Playwright's loop owns this one,
    and the write's pushes to agents (async_to_sync) need a thread without a loop."""
    from concurrent.futures import ThreadPoolExecutor

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def login(page, base: str, username: str, password: str):
    page.goto(base + "/inbox/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/inbox/")
    # Live updates are on once the socket is open.
    page.wait_for_selector("body[data-live='1']")
