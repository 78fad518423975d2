"""Readiness: can this instance do its work? Database, Redis, channel credentials.

Liveness (/healthz) only says the process and the database answer; a wrong
FIELD_ENCRYPTION_KEYS makes every webhook and every inbound event fail while it
stays green. The same checks answer GET /readyz (web) and `manage.py readiness`
(the worker's container healthcheck).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)


class NotReady(Exception):
    """A check's own finding; its text is safe to show on the public endpoint."""


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"  # the embedded default: in-memory layer, eager Celery
    import redis

    # The broker and cache, then each of the channel layer's shards (REDIS_URL itself by default).
    for url in dict.fromkeys([settings.REDIS_URL, *settings.HELPDESK_CHANNEL_LAYER_URLS]):
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    return "ok"


def _check_credentials() -> str:
    from channels_adapters.selectors import channels_with_unreadable_credentials

    unreadable = channels_with_unreadable_credentials()
    if unreadable:
        logger.error("Readiness: FIELD_ENCRYPTION_KEYS cannot decrypt channels %s", unreadable)
        raise NotReady(f"{len(unreadable)} channel(s) have credentials FIELD_ENCRYPTION_KEYS cannot decrypt")
    return "ok"


CHECKS = {"database": _check_database, "redis": _check_redis, "credentials": _check_credentials}


def readiness_report() -> tuple[bool, dict[str, str]]:
    """(ready, {check: "ok" | "not configured" | "failed: ..."}); never raises."""
    checks, ok = {}, True
    for name, check in CHECKS.items():
        try:
            checks[name] = check()
        except NotReady as exc:
            checks[name], ok = f"failed: {exc}", False
        except Exception as exc:  # any failure is "not ready"; details (hosts...) only in the log
            logger.warning("Readiness check %s failed", name, exc_info=True)
            checks[name], ok = f"failed: {exc.__class__.__name__}", False
    return ok, checks
