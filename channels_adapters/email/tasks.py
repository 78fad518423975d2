"""Beat polls every email channel that has an IMAP server; one task per mailbox."""

import logging

from celery import shared_task
from django.core.cache import cache

from channels_adapters.models import Channel

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def email_imap_poll_all():
    ids = [
        channel.pk
        for channel in Channel.objects.filter(kind="email", is_active=True)
        if channel.credentials.get("imap_host")
    ]
    for pk in ids:
        email_imap_poll_channel.delay(pk)
    return len(ids)


@shared_task(ignore_result=True, acks_late=True)
def email_imap_poll_channel(channel_id: int):
    from channels_adapters.email.imap import ImapPollError, imap_poll

    channel = Channel.objects.filter(pk=channel_id, kind="email", is_active=True).first()
    if channel is None:
        return None
    # One poll per mailbox at a time: a slow server must not get two sessions racing on UIDs.
    lock = f"helpdesk:email-imap-poll:{channel_id}"
    if not cache.add(lock, 1, timeout=600):
        return "busy"
    try:
        result = imap_poll(channel=channel)
    except ImapPollError as exc:
        logger.warning("IMAP poll of channel %s failed: %s", channel_id, exc)
        return "failed"
    finally:
        cache.delete(lock)
    return {"stored": len(result.stored), "duplicates": result.duplicates}
