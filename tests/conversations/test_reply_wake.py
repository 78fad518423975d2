"""Replies wake the senders (conversations/batches.py, WAKE_KEY) instead of one task each.

Against the real broker (the Redis list Celery's default queue is) and the
real task body run in this process; the provider is a local HTTP server.
"""

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from channels_adapters.base import Sender
from conversations import batches, delivery, tasks
from conversations.models import DeliveryAttempt, Message
from conversations.services import receive_inbound, send_reply
from tests.factories import ChannelFactory, UserFactory
from tests.provider_server import Reply


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(batches.WAKE_KEY, "celery")  # no earlier test's task or key in the way
    yield client
    client.delete(batches.WAKE_KEY, "celery")  # nor this test's tasks for a later worker


@pytest.fixture
def case(provider):
    channel = ChannelFactory(credentials={"secret": "api-secret", "callback_url": f"{provider.url}/callback"})
    return receive_inbound(
        channel=channel, sender=Sender("email", "ana@example.com"), external_id="in-1", text="hi"
    ).message.case


def _reply(case, agent, text, capture):
    with capture(execute=True):
        return send_reply(case=case, author_user=agent, body=text)


@pytest.mark.django_db
def test_replies_queued_before_a_task_starts_share_its_wake_up_and_it_sends_them_all(
    provider, broker, case, django_capture_on_commit_callbacks
):
    provider.script(*(Reply(200, {"external_id": f"remote-{n}"}) for n in range(4)))
    agent = UserFactory()
    replies = [_reply(case, agent, f"Reply {n}", django_capture_on_commit_callbacks) for n in range(3)]
    assert broker.llen("celery") == 1  # one task published for the three

    tasks.message_deliver.apply(args=(replies[0].pk,))  # the worker takes that task

    assert [r.json()["text"] for r in provider.requests] == ["Reply 0", "Reply 1", "Reply 2"]
    assert set(Message.objects.filter(pk__in=[r.pk for r in replies]).values_list("status", flat=True)) == {
        "sent"
    }
    assert not broker.exists(batches.WAKE_KEY)  # cleared by the task before its claim
    # A reply after the task started publishes a wake-up of its own.
    _reply(case, agent, "Later", django_capture_on_commit_callbacks)
    assert broker.llen("celery") == 2


@pytest.mark.django_db
def test_one_task_drains_every_due_reply_batch_after_batch(
    provider, broker, case, settings, django_capture_on_commit_callbacks
):
    settings.HELPDESK = {**settings.HELPDESK, "OUTBOUND_BATCH_SIZE": 2}
    provider.script(*(Reply(200, {"external_id": f"remote-{n}"}) for n in range(5)))
    agent = UserFactory()
    replies = [_reply(case, agent, f"Reply {n}", django_capture_on_commit_callbacks) for n in range(5)]
    assert broker.llen("celery") == 1

    tasks.message_deliver.apply(args=(replies[0].pk,))

    # Three claims of at most two: a reply whose SET found the key is never left behind.
    assert len(provider.requests) == 5
    assert DeliveryAttempt.objects.filter(message__in=replies, outcome="sent").count() == 5


@pytest.mark.django_db
def test_a_lost_wake_up_leaves_the_reply_to_the_redrive(
    provider, broker, case, django_capture_on_commit_callbacks, monkeypatch
):
    broker.set(batches.WAKE_KEY, 1, ex=60)  # a published task the broker then lost
    reply = _reply(case, UserFactory(), "Still goes out", django_capture_on_commit_callbacks)
    assert broker.llen("celery") == 0

    Message.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    queued = []
    monkeypatch.setattr(tasks.message_deliver, "delay", lambda pk: queued.append(pk))
    with django_capture_on_commit_callbacks(execute=True):
        result = delivery.outbound_redrive()

    assert result["requeued"] == 1 and queued == [reply.pk]
    tasks.message_deliver.apply(args=(reply.pk,))
    assert [r.json()["text"] for r in provider.requests] == ["Still goes out"]


@pytest.mark.django_db
def test_a_reply_costs_five_queries(provider, broker, case, django_assert_num_queries):
    agent = UserFactory()
    send_reply(case=case, author_user=agent, body="warm")  # caches: the adapter, the statements
    # The latest inbound messages (channel, address, window in one read), then
    # BEGIN, the thread's lock, the message with the case's touch, COMMIT.
    with django_assert_num_queries(5):
        reply = send_reply(case=case, author_user=agent, body="Counted")
    reply_row = Message.objects.get(pk=reply.pk)
    assert (reply_row.status, reply_row.body, reply_row.channel_id) == (
        "queued",
        "Counted",
        case.origin_channel_id,
    )
    case.refresh_from_db()
    assert case.last_message_at == reply_row.created_at
