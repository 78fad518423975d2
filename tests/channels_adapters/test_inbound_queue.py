"""The hand-off from webhook to worker: a Redis list of event ids drained in batches.

The database stays the source of truth: whatever Redis loses, the beat re-drive finds.
"""

import json
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from channels_adapters import services
from channels_adapters.base import hmac_sha256_hex
from channels_adapters.models import InboundEvent
from conversations.models import Message
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def _queue_clear(client):
    keys = [services.PENDING_KEY, services.QUEUED_KEY, services.RECHECK_KEY, services.DOORBELL_KEY]
    keys += list(client.scan_iter(match=services.LISTENING_KEY.format("*")))
    keys += list(client.scan_iter(match=services.INFLIGHT_KEY.format("*")))
    keys += list(client.scan_iter(match=services.DRAINER_LOCK.format("*")))
    client.delete(*keys)


@pytest.fixture
def queue():
    client = redis.Redis.from_url(settings.REDIS_URL)
    _queue_clear(client)
    yield client
    _queue_clear(client)


def drain_tasks_queued(client) -> int:
    """Drain tasks waiting on the Celery broker (the Redis list named after the queue)."""
    return sum(
        json.loads(raw)["headers"]["task"] == "channels_adapters.tasks.inbound_events_drain_task"
        for raw in client.lrange("celery", 0, -1)
    )


def pending(client) -> list[int]:
    return [int(pk) for pk in client.lrange(services.PENDING_KEY, 0, -1)]


def api_body(n: int, phone: str = "+14155550100") -> bytes:
    return json.dumps({"external_id": f"q-{n}", "from": {"phone": phone}, "text": f"message {n}"}).encode()


def store(channel, body: bytes) -> InboundEvent:
    return InboundEvent.objects.create(channel=channel, body=body, content_type="application/json")


def test_webhook_hands_its_event_to_the_workers_after_commit(
    client, queue, django_capture_on_commit_callbacks
):
    channel = ChannelFactory()
    body = api_body(1)
    headers = {"X-Signature": "sha256=" + hmac_sha256_hex(channel.credentials["secret"], body)}
    tasks_before = drain_tasks_queued(queue)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            channel.webhook_path, data=body, content_type="application/json", headers=headers
        )
    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert pending(queue) == []  # nothing leaves before the row is committed
    for callback in callbacks:
        callback()
    assert pending(queue) == [event.pk]
    assert drain_tasks_queued(queue) == tasks_before + 1


def test_one_drain_task_per_burst_and_one_more_per_batch(queue, settings):
    settings.HELPDESK = {**settings.HELPDESK, "INBOUND_BATCH_SIZE": 3}
    before = drain_tasks_queued(queue)
    services.inbound_events_enqueue(event_ids=[1])
    services.inbound_events_enqueue(event_ids=[2])  # a drain is already on its way
    assert drain_tasks_queued(queue) == before + 1
    services.inbound_events_enqueue(event_ids=[3, 4])  # crosses 3: a second worker may help
    assert drain_tasks_queued(queue) == before + 2
    assert pending(queue) == [1, 2, 3, 4]


def test_drain_processes_every_pending_event_in_batches(queue, settings):
    settings.HELPDESK = {**settings.HELPDESK, "INBOUND_BATCH_SIZE": 4}
    channel = ChannelFactory()
    events = [store(channel, api_body(n)) for n in range(10)]
    queue.rpush(services.PENDING_KEY, *[e.pk for e in events])

    assert services.inbound_events_drain() == 10

    assert pending(queue) == []
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert set(InboundEvent.objects.values_list("attempts", flat=True)) == {1}
    assert Message.objects.filter(channel=channel).count() == 10
    # The same customer wrote all ten: one thread, one case, in arrival order.
    bodies = list(Message.objects.order_by("pk").values_list("body", flat=True))
    assert bodies == [f"message {n}" for n in range(10)]


def test_batch_overhead_is_flat_and_outcomes_share_one_update():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    channel = ChannelFactory()
    services.inbound_events_process(event_ids=[store(channel, api_body(0)).pk])  # the customer exists
    counter = iter(range(1, 100))

    def queries_for(n):
        events = [store(channel, api_body(next(counter))) for _ in range(n)]
        with CaptureQueriesContext(connection) as captured:
            processed = services.inbound_events_process(event_ids=[e.pk for e in events])
        assert [e.status for e in processed] == ["processed"] * n
        return captured.captured_queries

    one, five, nine = queries_for(1), queries_for(5), queries_for(9)
    per_message = (len(five) - len(one)) // 4
    # Claiming and recording cost the same for 1 event or 9: only the messages add queries.
    assert len(nine) - len(five) == len(five) - len(one) == 4 * per_message
    assert per_message <= 6  # the thread lock, the case read and write, the message, a savepoint
    updates = [q["sql"] for q in nine if q["sql"].startswith('UPDATE "channels_adapters_inboundevent"')]
    assert len(updates) == 2  # attempts for the batch, then one outcome shared by all nine


def test_a_bad_event_in_a_batch_does_not_hold_up_the_others(queue):
    channel = ChannelFactory()
    good = store(channel, api_body(1))
    bad = store(channel, b"{not json")
    later = store(channel, api_body(2))
    processed = services.inbound_events_process(event_ids=[good.pk, bad.pk, later.pk])

    assert [e.status for e in processed] == ["processed", "failed", "processed"]
    bad.refresh_from_db()
    assert bad.status == "failed" and not bad.retryable and "Could not read the payload" in bad.error
    assert Message.objects.filter(channel=channel).count() == 2


def test_an_adapter_bug_fails_its_event_and_the_batch_goes_on(monkeypatch):
    from channels_adapters.api.adapter import ApiAdapter

    channel = ChannelFactory()
    good, buggy = store(channel, api_body(1)), store(channel, api_body(2))
    real_parse = ApiAdapter.parse

    def parse(self, channel, event):
        if event.pk == buggy.pk:
            raise KeyError("surprise")
        return real_parse(self, channel, event)

    monkeypatch.setattr(ApiAdapter, "parse", parse)
    processed = services.inbound_events_process(event_ids=[buggy.pk, good.pk])
    assert {e.pk: e.status for e in processed} == {good.pk: "processed", buggy.pk: "failed"}
    buggy.refresh_from_db()
    # A bug fails the same way on every try: not re-driven; an admin reprocesses after the fix.
    assert not buggy.retryable and "KeyError: 'surprise'" in buggy.error


def test_processed_events_are_skipped_when_popped_again(queue):
    channel = ChannelFactory()
    event = store(channel, api_body(1))
    services.inbound_events_process(event_ids=[event.pk])
    assert services.inbound_events_process(event_ids=[event.pk]) == []
    event.refresh_from_db()
    assert event.attempts == 1 and Message.objects.count() == 1


def test_an_id_lost_between_redis_and_a_worker_is_redriven(queue, settings):
    channel = ChannelFactory()
    event = store(channel, api_body(1))
    services.inbound_events_enqueue(event_ids=[event.pk])
    queue.delete(services.PENDING_KEY, services.QUEUED_KEY)  # Redis restarted without its data
    InboundEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(minutes=5))

    assert services.inbound_events_redrive() == 1
    assert pending(queue) == [event.pk]
    assert services.inbound_events_drain() == 1
    event.refresh_from_db()
    assert event.status == "processed" and Message.objects.filter(external_id="q-1").exists()


def test_redrive_wakes_a_drainer_for_ids_a_dead_one_left_on_the_list(queue):
    channel = ChannelFactory()
    stranded = store(channel, api_body(1))
    queue.rpush(services.PENDING_KEY, stranded.pk)  # its drainer died before popping it
    InboundEvent.objects.filter(pk=stranded.pk).update(received_at=timezone.now() - timedelta(minutes=5))
    before = drain_tasks_queued(queue)

    assert services.inbound_events_redrive() == 1
    assert drain_tasks_queued(queue) == before + 1  # the list was not empty, a drain is queued anyway
    assert services.inbound_events_drain() == 1  # the repeat of the id is skipped as processed
    assert pending(queue) == []
    stranded.refresh_from_db()
    assert stranded.status == "processed" and stranded.attempts == 1


def test_a_long_drain_hands_over_to_a_fresh_task(queue, settings):
    settings.HELPDESK = {**settings.HELPDESK, "INBOUND_BATCH_SIZE": 2}
    channel = ChannelFactory()
    events = [store(channel, api_body(n)) for n in range(5)]
    queue.rpush(services.PENDING_KEY, *[e.pk for e in events])
    before = drain_tasks_queued(queue)

    assert services.inbound_events_drain(max_seconds=0) == 2  # one batch, then time is up

    assert pending(queue) == [e.pk for e in events[2:]]
    assert drain_tasks_queued(queue) == before + 1


def test_one_drainer_at_a_time_and_nothing_left_behind(queue, settings):
    channel = ChannelFactory()
    events = [store(channel, api_body(n)) for n in range(3)]
    queue.rpush(services.PENDING_KEY, *[e.pk for e in events])
    running = queue.lock(services.DRAINER_LOCK.format(0), timeout=30)
    assert running.acquire(blocking=False)  # another worker process is draining

    assert services.inbound_events_drain() == 0  # this task leaves it to them
    assert pending(queue) == [e.pk for e in events]

    running.release()
    assert services.inbound_events_drain() == 3
    assert pending(queue) == []


def test_more_drainers_when_configured(queue, settings):
    settings.HELPDESK = {**settings.HELPDESK, "INBOUND_DRAINERS": 2}
    channel = ChannelFactory()
    queue.rpush(services.PENDING_KEY, store(channel, api_body(1)).pk)
    running = queue.lock(services.DRAINER_LOCK.format(0), timeout=30)
    assert running.acquire(blocking=False)
    try:
        assert services.inbound_events_drain() == 1  # the second slot is free
    finally:
        running.release()


# Crash recovery --------------------------------------------------------------

_HOLD_A_SLOT = """
import time, django
django.setup()
from channels_adapters import services as s
slot = s._drainer_lock_take()
inflight, lock_key = slot.keys
s._script(s._POP_LUA)(keys=[s.PENDING_KEY, inflight, lock_key], args=[2, slot.token])
print("holding", flush=True)
time.sleep(120)
"""


def test_the_slot_of_a_drainer_killed_mid_batch_is_taken_over_within_a_lease(queue, settings):
    import os
    import signal
    import subprocess
    import sys
    import time

    lease = 1.0
    settings.HELPDESK = {**settings.HELPDESK, "INBOUND_DRAIN_LEASE_SECONDS": lease}
    channel = ChannelFactory()
    events = [store(channel, api_body(n)) for n in range(5)]
    services.inbound_events_enqueue(event_ids=[e.pk for e in events])
    env = {**os.environ, "HELPDESK_INBOUND_DRAIN_LEASE_SECONDS": str(lease)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_A_SLOT], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        time.sleep(lease * 2.5)
        # Alive past its lease: the heartbeat keeps the slot, the batch stays in its hands.
        assert services._drainer_lock_take() is None
        assert pending(queue) == [e.pk for e in events[2:]]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    killed = time.monotonic()
    while (slot := services._drainer_lock_take()) is None:
        assert time.monotonic() - killed < lease + 1, "the dead drainer's slot was not freed"
        time.sleep(0.05)
    services._drainer_lock_release(slot)
    # Taking the slot put the dead drainer's batch back at the head, in order.
    assert pending(queue) == [e.pk for e in events]
    assert services.inbound_events_drain() == 5
    assert pending(queue) == [] and not queue.smembers(services.QUEUED_KEY)
    assert Message.objects.filter(channel=channel).count() == 5
    assert set(InboundEvent.objects.values_list("attempts", flat=True)) == {1}


def test_redrive_never_queues_an_id_twice(queue):
    channel = ChannelFactory()
    events = [store(channel, api_body(n)) for n in range(4)]
    services.inbound_events_enqueue(event_ids=[e.pk for e in events[:2]])
    InboundEvent.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    # A drainer is at work on the first id when beat runs, twice.
    slot = services._drainer_lock_take()
    inflight, lock_key = slot.keys
    services._script(services._POP_LUA)(keys=[services.PENDING_KEY, inflight, lock_key], args=[1, slot.token])

    assert services.inbound_events_redrive() == 4
    assert services.inbound_events_redrive() == 4
    services.inbound_events_enqueue(event_ids=[events[3].pk])  # and an admin's reprocess

    assert pending(queue) == [e.pk for e in events[1:]]  # the one in hands is not queued again
    services._drainer_lock_release(slot)
    assert services.inbound_events_drain() == 4
    assert pending(queue) == [] and not queue.smembers(services.QUEUED_KEY)
    assert set(InboundEvent.objects.values_list("attempts", flat=True)) == {1}


def test_a_drain_finding_the_slot_taken_looks_again_once_per_lease(queue, settings):
    channel = ChannelFactory()
    queue.rpush(services.PENDING_KEY, store(channel, api_body(1)).pk)
    dead = queue.lock(services.DRAINER_LOCK.format(0), timeout=30)
    assert dead.acquire(blocking=False)  # a holder that will never come back
    before = drain_tasks_queued(queue)

    assert services.inbound_events_drain() == 0
    assert services.inbound_events_drain() == 0

    # One delayed drain, whatever the number of drains that found the slot taken.
    assert drain_tasks_queued(queue) == before + 1
    assert queue.pttl(services.RECHECK_KEY) > 0


def test_a_drainer_that_lost_its_lease_cannot_touch_the_new_holders_batch(queue, settings):
    import time

    settings.HELPDESK = {**settings.HELPDESK, "INBOUND_DRAIN_LEASE_SECONDS": 0.3}
    channel = ChannelFactory()
    events = [store(channel, api_body(n)) for n in range(3)]
    services.inbound_events_enqueue(event_ids=[e.pk for e in events])
    stalled = services._drainer_lock_take()
    stalled.stop.set()  # its heartbeat stops, as on a host paused past the lease
    stalled.heartbeat.join()
    time.sleep(0.5)
    fresh = services._drainer_lock_take()
    assert fresh is not None
    inflight, lock_key = fresh.keys
    pop, ack = services._script(services._POP_LUA), services._script(services._ACK_LUA)
    assert pop(keys=[services.PENDING_KEY, inflight, lock_key], args=[2, fresh.token]) == [
        str(e.pk).encode() for e in events[:2]
    ]

    assert pop(keys=[services.PENDING_KEY, inflight, lock_key], args=[2, stalled.token]) is None
    assert ack(keys=[inflight, services.QUEUED_KEY, lock_key], args=[stalled.token]) == -1
    assert queue.llen(inflight) == 2 and queue.scard(services.QUEUED_KEY) == 3
    services._drainer_lock_release(fresh)


def test_recover_puts_back_a_batch_left_in_a_slot_nobody_uses_any_more(queue, settings):
    # Two drainers ran, one died mid-batch, then INBOUND_DRAINERS went back to 1.
    queue.rpush(services.INFLIGHT_KEY.format(1), 7, 8)
    queue.sadd(services.QUEUED_KEY, 7, 8)
    queue.rpush(services.PENDING_KEY, 9)
    held = queue.lock(services.DRAINER_LOCK.format(0), timeout=30)
    assert held.acquire(blocking=False)
    queue.rpush(services.INFLIGHT_KEY.format(0), 6)  # a live drainer's batch stays with it
    before = drain_tasks_queued(queue)

    assert services.inbound_events_recover() == 2

    assert pending(queue) == [7, 8, 9]
    assert queue.lrange(services.INFLIGHT_KEY.format(0), 0, -1) == [b"6"]
    assert drain_tasks_queued(queue) == before + 1
    held.release()


def test_redrive_queues_again_an_id_marked_queued_but_on_no_list(queue):
    channel = ChannelFactory()
    orphan, waiting = store(channel, api_body(1)), store(channel, api_body(2))
    services.inbound_events_enqueue(event_ids=[orphan.pk, waiting.pk])
    queue.lrem(services.PENDING_KEY, 0, orphan.pk)  # a drainer of the previous version popped it and died
    InboundEvent.objects.update(received_at=timezone.now() - timedelta(minutes=5))

    assert services.inbound_events_redrive() == 2

    assert pending(queue) == [waiting.pk, orphan.pk]
    assert services.inbound_events_drain() == 2


def test_a_real_worker_takes_over_the_slot_of_a_dead_drainer_within_seconds(live_worker, queue, settings):
    import time

    from tests.conftest import wait_for

    settings.HELPDESK = {**settings.HELPDESK, "INBOUND_DRAIN_LEASE_SECONDS": 1.0}
    channel = ChannelFactory()
    events = [store(channel, api_body(n)) for n in range(3)]
    dead = queue.lock(services.DRAINER_LOCK.format(0), timeout=1)
    assert dead.acquire(blocking=False)  # its holder died: no heartbeat will ever renew it
    queue.rpush(services.INFLIGHT_KEY.format(0), events[0].pk)  # with a batch in its hands
    queue.sadd(services.QUEUED_KEY, events[0].pk)
    started = time.monotonic()

    services.inbound_events_enqueue(event_ids=[e.pk for e in events[1:]])  # wakes a drain: slot taken

    wait_for(lambda: not InboundEvent.objects.filter(status="pending").exists(), timeout=10)
    assert time.monotonic() - started < 5
    assert Message.objects.filter(channel=channel).count() == 3
    assert pending(queue) == [] and not queue.smembers(services.QUEUED_KEY)


@pytest.mark.django_db(transaction=True)
def test_an_idle_drainer_waits_on_the_doorbell_and_takes_the_next_webhook_without_a_task(queue, settings):
    import threading
    import time

    from django.db import connection

    from tests.conftest import wait_for

    def drain():
        try:
            drained.append(services.inbound_events_drain())
        finally:
            connection.close()  # this thread's own connection

    settings.HELPDESK = {**settings.HELPDESK, "INBOUND_DRAIN_IDLE_SECONDS": 3.0}
    channel = ChannelFactory()
    first = store(channel, api_body(1))
    services.inbound_events_enqueue(event_ids=[first.pk])
    tasks = drain_tasks_queued(queue)
    drained: list[int] = []
    drainer = threading.Thread(target=drain)
    drainer.start()
    wait_for(lambda: queue.exists(services.LISTENING_KEY.format(0)), timeout=5)

    later = store(channel, api_body(2))
    pushed = time.monotonic()
    services.inbound_events_enqueue(event_ids=[later.pk])
    wait_for(lambda: InboundEvent.objects.filter(pk=later.pk, status="processed").exists(), timeout=5)

    assert time.monotonic() - pushed < 1.0  # popped on the ring, not at the end of a wait
    assert drain_tasks_queued(queue) == tasks  # no Celery task for the second webhook
    drainer.join(timeout=10)
    assert drained == [2]  # it left once nothing came for the idle time
    assert not queue.exists(services.LISTENING_KEY.format(0))
    assert Message.objects.filter(channel=channel).count() == 2


def test_ids_waiting_while_a_drainer_claims_to_listen_queue_a_drain(queue):
    # A drainer killed while waiting leaves its listening key for a moment: the
    # second id to arrive finds the first still there and wakes a drain anyway.
    channel = ChannelFactory()
    queue.set(services.LISTENING_KEY.format(0), 1, px=10_000)
    before = drain_tasks_queued(queue)

    services.inbound_events_enqueue(event_ids=[store(channel, api_body(1)).pk])
    assert drain_tasks_queued(queue) == before  # a listener would take it: no task
    services.inbound_events_enqueue(event_ids=[store(channel, api_body(2)).pk])

    assert drain_tasks_queued(queue) == before + 1
