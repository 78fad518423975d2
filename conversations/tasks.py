from celery import shared_task

from conversations import services


@shared_task(bind=True, max_retries=None, acks_late=True, ignore_result=True)
def message_deliver(self, message_id: int):
    outcome = services.message_deliver(message_id=message_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.outcome


@shared_task(ignore_result=True)
def outbound_redrive():
    return services.outbound_redrive()


@shared_task(ignore_result=True)
def cases_snooze_wake():
    return services.cases_snooze_wake()
