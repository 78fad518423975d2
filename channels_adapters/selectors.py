import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from channels_adapters.models import Channel

# Every webhook looks its channel up (and decrypts its credentials); under a
# provider's burst that is the same row thousands of times a second. A short
# per-process cache saves the query; a save in this process clears it at once,
# other processes see an admin's change within CHANNEL_CACHE_SECONDS.
_cache: dict[object, tuple[float, Channel | None]] = {}
_cache_lock = threading.Lock()


def _cached(cache_key, load) -> Channel | None:
    ttl = settings.HELPDESK.get("CHANNEL_CACHE_SECONDS", 0)
    now = time.monotonic()
    if ttl:
        hit = _cache.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
    channel = load()
    if ttl and channel is not None:  # unknown keys are not cached: a scan must not fill memory
        with _cache_lock:
            _cache[cache_key] = (now + ttl, channel)
    return channel


def channel_get_active(*, key: str) -> Channel | None:
    """The channel a webhook URL names, if it is switched on."""
    return _cached(key, lambda: Channel.objects.filter(key=key, is_active=True).first())


def channel_get(*, pk: int) -> Channel | None:
    """Any channel by id (workers processing its stored events), active or not."""
    return _cached(("pk", pk), lambda: Channel.objects.filter(pk=pk).first())


def channel_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


@receiver([post_save, post_delete], sender=Channel)
def _channel_changed(sender, instance, **kwargs):
    channel_cache_clear()
