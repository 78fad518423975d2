"""Messages per second per channel for campaigns: each send reserves a one-second slot.

The counters live in the cache (Redis in production: INCR is atomic across
workers; the demo's local memory cache is per process, fine with one process).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache

# How far ahead a send may be placed: beyond that the dispatcher is releasing too much at once.
_LOOKAHEAD_SECONDS = 3600


def channel_rate(*, campaign, channel) -> float:
    rates = campaign.throttle if campaign is not None and isinstance(campaign.throttle, dict) else {}
    for key in (str(channel.pk), channel.kind):
        value = rates.get(key)
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return float(settings.OUTREACH["DEFAULT_RATE"])


def slot_reserve(*, channel_id: int, rate: float, now: datetime) -> datetime:
    """The first second from `now` with room for one more message on the channel; it is taken.

    A rate below one per second is spread over windows of 1/rate seconds, one message each.
    """
    window = 1 if rate >= 1 else math.ceil(1 / rate)
    per_window = max(1, int(rate * window))
    start = math.floor(now.timestamp() / window)
    for offset in range(0, _LOOKAHEAD_SECONDS // window + 1):
        bucket = start + offset
        key = f"outreach:rate:{channel_id}:{window}:{bucket}"
        cache.add(key, 0, timeout=_LOOKAHEAD_SECONDS + 60)
        try:
            taken = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=_LOOKAHEAD_SECONDS + 60)
            taken = 1
        if taken <= per_window:
            slot = datetime.fromtimestamp(bucket * window, tz=now.tzinfo)
            return max(slot, now)
    return now + timedelta(seconds=_LOOKAHEAD_SECONDS)
