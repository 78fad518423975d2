import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)


def healthz(request):
    """Liveness for docker-compose and load balancers: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"  # the embedded default: in-memory layer, eager Celery
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


class NotReady(Exception):
    """A check's own finding; its text is safe to show on the public endpoint."""


def _check_credentials() -> str:
    from channels_adapters.selectors import channels_with_unreadable_credentials

    unreadable = channels_with_unreadable_credentials()
    if unreadable:
        logger.error("Readiness: FIELD_ENCRYPTION_KEYS cannot decrypt channels %s", unreadable)
        raise NotReady(f"{len(unreadable)} channel(s) have credentials FIELD_ENCRYPTION_KEYS cannot decrypt")
    return "ok"


READINESS_CHECKS = {"database": _check_database, "redis": _check_redis, "credentials": _check_credentials}


def readyz(request):
    """Readiness: this instance can do its work (database, Redis, channel credentials).

    /healthz only says the process and database answer; a wrong encryption key
    makes every webhook fail while it stays green. Orchestrators and compose
    healthchecks ask here, and route no traffic to an instance that answers 503.
    """
    checks, ok = {}, True
    for name, check in READINESS_CHECKS.items():
        try:
            checks[name] = check()
        except NotReady as exc:
            checks[name], ok = f"failed: {exc}", False
        except Exception as exc:  # any failure is "not ready"; details (hosts...) only in the log
            logger.warning("Readiness check %s failed", name, exc_info=True)
            checks[name], ok = f"failed: {exc.__class__.__name__}", False
    return JsonResponse({"ok": ok, "checks": checks}, status=200 if ok else 503)
