from celery import shared_task

from integrations import delivery


@shared_task(bind=True, max_retries=None, acks_late=True, ignore_result=True)
def webhook_deliver(self, delivery_id: int):
    outcome = delivery.webhook_deliver(delivery_id=delivery_id)
    # Eager (the demo, no broker): a retry would run at once, inline; the row
    # keeps its next_attempt_at and the re-drive sends it when that comes.
    if outcome.retry_in is not None and not self.request.is_eager:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.outcome


@shared_task(ignore_result=True)
def webhooks_redrive():
    return delivery.webhooks_redrive()
