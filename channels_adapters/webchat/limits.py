"""Rate limits on what anonymous visitors can make us store.

Fixed windows counted in the cache (Redis in production, shared by every web
process). Past a limit nothing is stored and the widget says so.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


def _hit(key: str, *, limit: int, window: int) -> None:
    if limit <= 0:
        return
    slot = int(time.time() // window)
    name = f"webchat:rate:{key}:{slot}"
    if cache.add(name, 1, timeout=window + 1):
        count = 1
    else:
        try:
            count = cache.incr(name)
        except ValueError:  # expired between add and incr
            cache.add(name, 1, timeout=window + 1)
            count = 1
    if count > limit:
        raise RateLimited(retry_after=max(1, int(window - time.time() % window)))


def rate_check(*, action: str, visitor_address: str | None, ip: str) -> None:
    """Raise RateLimited when this visitor or this address has done `action` too often."""
    rules = settings.HELPDESK["WEBCHAT_RATE_LIMITS"][action]
    window = rules["window"]
    if ip:
        _hit(f"{action}:ip:{ip}", limit=rules["per_ip"], window=window)
    if visitor_address:
        _hit(f"{action}:v:{visitor_address}", limit=rules["per_visitor"], window=window)
