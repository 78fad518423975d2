from django.db import connection
from django.http import JsonResponse

from helpdesk.readiness import readiness_report


def healthz(request):
    """Liveness for docker-compose and load balancers: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


def readyz(request):
    """Readiness (helpdesk/readiness.py): route traffic here only while it answers 200."""
    ok, checks = readiness_report()
    return JsonResponse({"ok": ok, "checks": checks}, status=200 if ok else 503)
