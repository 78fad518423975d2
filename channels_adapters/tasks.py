import logging

from celery import shared_task
from celery.signals import worker_ready

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


@worker_ready.connect
def _inbound_recover_on_start(**kwargs):
    # A worker that starts is often the one replacing a worker that died: what
    # its drainer held is queued again now, not at the next beat re-drive.
    from django.db import connections

    try:
        services.inbound_events_recover()
    except Exception:  # noqa: BLE001 - Redis away must not keep the worker from starting
        logging.getLogger(__name__).exception("Could not recover inbound work at worker start")
    finally:
        # This is the pool's parent process: no connection of its may reach a forked child.
        connections.close_all()
