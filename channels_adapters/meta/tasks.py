"""Celery work for the Meta channels. Imported by the WhatsApp adapter (so by the
registry), which registers the task and the hook that queues it."""

from celery import shared_task
from django.dispatch import receiver

from channels_adapters.base import TransientSendError
from channels_adapters.meta import services
from conversations.signals import message_created

MEDIA_FETCH_RETRIES = 5


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=MEDIA_FETCH_RETRIES)
def whatsapp_media_fetch(self, message_id: int):
    try:
        services.whatsapp_media_fetch(
            message_id=message_id, final=self.request.retries >= MEDIA_FETCH_RETRIES
        )
    except TransientSendError as exc:
        raise self.retry(countdown=min(15 * 2**self.request.retries, 600)) from exc


@receiver(message_created, dispatch_uid="meta_whatsapp_media_fetch")
def _queue_media_fetch(sender, message, **kwargs):
    # Sent after commit: the task finds the message. Media ids last about 30 days.
    if message.channel_id is None or not services.pending_media(message):
        return
    if message.channel.kind == "whatsapp":
        whatsapp_media_fetch.delay(message.pk)
