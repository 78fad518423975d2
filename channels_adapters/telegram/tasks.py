from celery import shared_task

from channels_adapters.base import TransientSendError
from channels_adapters.telegram import services


@shared_task(bind=True, max_retries=5, acks_late=True, ignore_result=True)
def telegram_attachments_fetch_task(self, message_id: int):
    try:
        return services.telegram_attachments_fetch(message_id=message_id)
    except TransientSendError as exc:
        raise self.retry(countdown=exc.retry_after or 30 * (self.request.retries + 1)) from exc
