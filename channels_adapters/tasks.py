from celery import shared_task

from channels_adapters import services


@shared_task(acks_late=True, ignore_result=True)
def inbound_event_process_task(event_id: int):
    event = services.inbound_event_process(event_id=event_id)
    return event.status if event else None


@shared_task(acks_late=True, ignore_result=True)
def inbound_events_drain_task():
    return services.inbound_events_drain()


@shared_task(ignore_result=True)
def inbound_events_redrive():
    return services.inbound_events_redrive()
