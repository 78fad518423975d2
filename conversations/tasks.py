import logging
import time

from celery import shared_task
from celery.signals import celeryd_init, worker_ready

from conversations import batches, cases, delivery


@shared_task(bind=True, max_retries=None, acks_late=True, ignore_result=True)
def message_deliver(self, message_id: int):
    # Before the first claim: a reply that found the wake-up key set counts on
    # this task's claims to take it (batches.WAKE_KEY).
    batches.sends_wake_clear()
    limit = batches._conf("OUTBOUND_BATCH_SIZE")
    deadline = time.monotonic() + batches._conf("OUTBOUND_BATCH_SECONDS")
    worker = self.request.hostname or ""
    own = None
    pk_next = message_id
    while True:
        # This message and other due ones in one batch (conversations/batches.py).
        outcomes = batches.messages_deliver_due(message_id=pk_next, worker=worker, limit=limit)
        for pk, outcome in outcomes.items():
            if outcome.retry_in is not None:
                # Each message's backoff is its own: a task of its own at its next attempt.
                message_deliver.apply_async((pk,), countdown=outcome.retry_in)
        if own is None:
            own = outcomes.get(message_id)
        if sum(o.outcome != "skipped" for o in outcomes.values()) < limit:
            break  # nothing more was due when that claim ran
        if time.monotonic() > deadline:
            # Still more due: another task goes on, so this process's other tasks are not held up.
            message_deliver.delay(0)
            break
        pk_next = 0  # no message of its own: only the oldest due ones
    return own.outcome if own else "skipped"


@shared_task(ignore_result=True)
def outbound_redrive():
    return delivery.outbound_redrive()


@shared_task(ignore_result=True)
def cases_snooze_wake():
    return cases.cases_snooze_wake()


# When this node began starting: its pool may claim sends before worker_ready
# fires, and those are not the ones a crash cut short.
_node_started_at = None


@celeryd_init.connect
def _remember_node_start(**kwargs):
    global _node_started_at
    from django.utils import timezone

    _node_started_at = timezone.now()


@worker_ready.connect
def _outbound_recover_on_start(sender=None, **kwargs):
    # The node is starting again, maybe after a kill -9: its sends cut short
    # and the tasks it had reserved are settled now, not a claim timeout later.
    from django.db import connections

    try:
        delivery.outbound_recover(worker=getattr(sender, "hostname", "") or "", started_at=_node_started_at)
    except Exception:  # noqa: BLE001 - the database away must not keep the worker from starting
        logging.getLogger(__name__).exception("Could not recover outbound sends at worker start")
    finally:
        # This is the pool's parent process: no connection of its may reach a forked child.
        connections.close_all()
