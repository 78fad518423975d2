"""Short-lived per-process caches of rows read on every hot call.

Webhooks look their channel up, and every new case its SLA policy: under a
provider's burst that is the same few rows thousands of times a second. The
owner of a cache clears it on its model's post_save / post_delete, so a change
made in this process is seen at once; other processes see it within the
cache's time to live. A load returning None (an unknown webhook key) is not
cached: a scan of random keys must not fill memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

_caches: list[ProcessCache] = []


class ProcessCache:
    def __init__(self, *, ttl_seconds: Callable[[], float]):
        # A callable, read on each get: settings overridden in tests apply at once.
        self._ttl_seconds = ttl_seconds
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        _caches.append(self)

    def get(self, key, load: Callable[[], Any]):
        ttl = self._ttl_seconds()
        now = time.monotonic()
        if ttl:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()
        if ttl and value is not None:
            with self._lock:
                self._entries[key] = (now + ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def process_caches_clear() -> None:
    """Every cache of this process (tests: a rollback sends no post_delete)."""
    for cache in _caches:
        cache.clear()
