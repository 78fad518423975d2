from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from channels_adapters.models import Channel
from helpdesk.process_cache import ProcessCache

# Every webhook looks its channel up (and decrypts its credentials), every
# worker batch its events' channels: cached per process for CHANNEL_CACHE_SECONDS.
_channels = ProcessCache(ttl_seconds=lambda: settings.HELPDESK.get("CHANNEL_CACHE_SECONDS", 0))


def channel_get_active(*, key: str) -> Channel | None:
    """The channel a webhook URL names, if it is switched on."""
    return _channels.get(key, lambda: Channel.objects.filter(key=key, is_active=True).first())


def channel_get(*, pk: int) -> Channel | None:
    """Any channel by id (workers processing its stored events), active or not."""
    return _channels.get(("pk", pk), lambda: Channel.objects.filter(pk=pk).first())


def channels_with_unreadable_credentials() -> list[int]:
    """Channels whose stored credentials FIELD_ENCRYPTION_KEYS cannot decrypt.

    Reads the raw tokens (cast to text, so the field does not decrypt them on
    load and stop at the first failure) and tries each one.
    """
    from django.db.models import TextField
    from django.db.models.functions import Cast

    from helpdesk.fields import encrypted_readable

    rows = Channel.objects.annotate(token=Cast("credentials", TextField())).values_list("pk", "token")
    return [pk for pk, token in rows.order_by("pk") if not encrypted_readable(token)]


@receiver([post_save, post_delete], sender=Channel)
def _channel_changed(sender, instance, **kwargs):
    _channels.clear()
