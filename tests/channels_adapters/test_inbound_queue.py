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


@pytest.fixture
def queue():
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(services.PENDING_KEY)
    yield client
    client.delete(services.PENDING_KEY)


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
    assert per_message <= 12
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
    queue.lpop(services.PENDING_KEY)  # a worker popped it, then died
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
