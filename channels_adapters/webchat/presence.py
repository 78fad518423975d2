"""Whether a visitor is on the site now, and on which page (for the agent's sidebar).

Kept in the cache (Redis in production), refreshed by the visitor's socket and
long-polls. A visitor counts as present for HELPDESK_WEBCHAT_OFFLINE_AFTER_SECONDS
after their last sign of life: a page change or a short network loss is not
"gone", a closed tab for a few minutes is.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

_KEY = "webchat:presence:{}"


def _ttl() -> float:
    return settings.HELPDESK["WEBCHAT_OFFLINE_AFTER_SECONDS"]


def presence_touch(*, address: str, page: dict | None = None) -> None:
    key = _KEY.format(address)
    current = cache.get(key) or {}
    if page:
        current.update({k: str(v)[:500] for k, v in page.items() if k in ("url", "title") and v})
    current["seen_at"] = timezone.now().isoformat()
    cache.set(key, current, timeout=_ttl())


def presence_get(*, address: str) -> dict | None:
    """{"url", "title", "seen_at"} while the visitor is present, else None."""
    return cache.get(_KEY.format(address))


def visitor_present(*, address: str) -> bool:
    return presence_get(address=address) is not None
