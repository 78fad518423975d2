"""Reads that may lag go to a read replica, when one is configured.

The dashboard, the KPI API, the scorecard and the exports read aggregates a
supervisor looks at over days: a replica a second behind changes nothing for
them, and their heavy GROUP BYs leave the primary to the inbox and the
webhooks. Everything else (the inbox, the API's cases and messages, every
write, every read inside a write) stays on the primary, which is the only
database that is always current.

A view opts in with @reads_may_lag; the router sends its reads to the
"replica" alias while settings.HELPDESK_READ_REPLICA is on (set when
DATABASE_REPLICA_URL is). Without a replica the router says nothing and Django
uses "default", so the embedded default and the tests run unchanged.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from contextlib import contextmanager

from django.conf import settings

REPLICA = "replica"

_reads_may_lag = contextvars.ContextVar("helpdesk_reads_may_lag", default=False)


def replica_alias() -> str | None:
    """The alias lagging reads use now, or None (the primary)."""
    if getattr(settings, "HELPDESK_READ_REPLICA", False) and REPLICA in settings.DATABASES:
        return REPLICA
    return None


@contextmanager
def lagging_reads():
    token = _reads_may_lag.set(True)
    try:
        yield
    finally:
        _reads_may_lag.reset(token)


def reads_may_lag(view):
    """Mark a view whose reads may come from the replica (sync or async views)."""
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def wrapped_async(*args, **kwargs):
            with lagging_reads():
                return await view(*args, **kwargs)

        return wrapped_async

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        with lagging_reads():
            return view(*args, **kwargs)

    return wrapped


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if _reads_may_lag.get():
            return replica_alias()
        return None

    def db_for_write(self, model, **hints):
        # Never the replica, even inside a lagging view: the primary takes every write.
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        # The replica holds the same rows as the primary.
        return True

    def allow_migrate(self, db, app_label, **hints):
        # The replica follows the primary's schema through replication.
        return db != REPLICA
