"""The bot through a real Celery worker on the Redis broker: the inbound path queues the turn,
the worker answers; a redelivered task, two quick messages and a lost task stay exactly-once."""

import itertools

import pytest

from channels_adapters.base import Sender
from conversations.models import Author, Case, CaseStatus, MessageKind
from conversations.services import receive_inbound
from knowledge.models import BotSession, BotTurn
from knowledge.tasks import bot_message_turn
from tests.conftest import wait_for
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db(transaction=True)

_ids = itertools.count(1)


def write(channel, text, *, address):
    # A real commit: the receiver's after-commit hook queues the turn on Redis.
    return receive_inbound(
        channel=channel, sender=Sender("api", address), external_id=f"w-{next(_ids)}", text=text
    ).message


def bot_texts(case_id):
    from conversations.models import Message

    return list(
        Message.objects.filter(case_id=case_id, author=Author.BOT, kind=MessageKind.TEXT).order_by("id")
    )


def turns_done(*messages):
    done = BotTurn.objects.filter(message__in=messages, done_at__isnull=False)
    return lambda: done.count() == len(messages)


@pytest.fixture
def channel(kb):
    return ChannelFactory(kind="api", settings={"bot": {"mode": "always", "name": "Lola"}})


def test_the_worker_answers_then_resolves_on_yes_and_a_redelivery_changes_nothing(live_worker, channel, kb):
    question = write(channel, "I forgot my password and cannot log in", address="w1")
    wait_for(turns_done(question))
    [answer] = bot_texts(question.case_id)
    assert kb["reset-your-password"].public_url in answer.body and "Lola" in answer.body
    # The same task delivered again (acks_late after a crash past the commit), twice.
    bot_message_turn.delay(question.pk)
    bot_message_turn.delay(question.pk)
    yes = write(channel, "yes", address="w1")
    # One worker, first in first out: the duplicates ran before the "yes".
    wait_for(turns_done(yes))
    case = Case.objects.get(pk=question.case_id)
    assert case.status == CaseStatus.RESOLVED and case.first_response_at is None
    assert BotSession.objects.get(case=case).state == BotSession.State.RESOLVED
    lines = bot_texts(case.pk)
    assert len(lines) == 2 and lines[0].pk == answer.pk and "glad it helped" in lines[1].body


def test_two_quick_messages_are_answered_in_order_and_once(live_worker, channel, kb):
    first = write(channel, "How long does shipping take?", address="w2")
    second = write(channel, "And how do I cancel an order?", address="w2")
    wait_for(turns_done(first, second))
    shipping, cancel = bot_texts(first.case_id)
    assert shipping.meta["bot"]["article"] == kb["shipping-times-and-costs"].pk
    assert cancel.meta["bot"]["article"] == kb["cancel-an-order"].pk
    assert shipping.created_at < cancel.created_at
    assert BotSession.objects.get(case_id=first.case_id).answers == 2
    assert sorted(BotTurn.objects.values_list("outcome", flat=True)) == ["answered", "answered"]


def test_a_turn_whose_task_was_lost_is_answered_after_the_redrive(live_worker, kb):
    from datetime import timedelta

    from django.utils import timezone

    from knowledge.bot import bot_turns_redrive

    channel = ChannelFactory(kind="api")  # off when the message came: no task was queued
    message = write(channel, "How do I reset my password?", address="w3")
    channel.settings = {"bot": {"mode": "always"}}
    channel.save()
    # As if the broker had been down when the message was announced: the row, no task.
    BotTurn.objects.create(message=message, queued_at=timezone.now() - timedelta(minutes=2))
    assert bot_turns_redrive() == {"requeued": 1, "stale": 0}
    wait_for(turns_done(message))
    assert len(bot_texts(message.case_id)) == 1


def test_done_turns_are_pruned_after_the_kept_days_and_pending_ones_never(settings, kb):
    from datetime import timedelta

    from django.utils import timezone

    from knowledge.bot import bot_turns_prune

    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "BOT_TURN_KEEP_DAYS": 30}
    channel = ChannelFactory(kind="api")
    now = timezone.now()
    old_done, old_pending, recent_done = (
        write(channel, text, address=f"p{i}") for i, text in enumerate("abc")
    )
    BotTurn.objects.create(
        message=old_done, queued_at=now - timedelta(days=31), done_at=now - timedelta(days=31)
    )
    BotTurn.objects.create(message=old_pending, queued_at=now - timedelta(days=31))
    BotTurn.objects.create(
        message=recent_done, queued_at=now - timedelta(days=29), done_at=now - timedelta(days=29)
    )

    assert bot_turns_prune(now=now, batch=1) == 1
    assert set(BotTurn.objects.values_list("message_id", flat=True)) == {old_pending.pk, recent_done.pk}
    assert bot_turns_prune(now=now) == 0


def test_supervisors_read_the_bot_turns_in_admin_and_cannot_change_them(
    client, kb, django_assert_max_num_queries
):
    from tests.factories import UserFactory

    channel = ChannelFactory(kind="api")
    messages = [write(channel, f"question {i}", address=f"a{i}") for i in range(5)]
    for message in messages:
        BotTurn.objects.create(message=message, outcome=BotTurn.Outcome.ANSWERED)
    client.force_login(UserFactory(role="supervisors", is_staff=True))
    with django_assert_max_num_queries(12):
        listing = client.get("/admin/knowledge/botturn/")
    assert listing.status_code == 200
    assert listing.content.decode().count("Answered") >= 5
    change = client.post(f"/admin/knowledge/botturn/{messages[0].pk}/change/", {"outcome": "failed"})
    assert change.status_code == 403
    assert BotTurn.objects.get(pk=messages[0].pk).outcome == "answered"
    client.force_login(UserFactory(is_staff=True))
    assert client.get("/admin/knowledge/botturn/").status_code == 403


def test_a_drain_batch_records_its_turns_and_queues_one_task_answered_in_order(kb, channel, settings):
    """No worker: the batch's turns are rows before anything is queued, then one task for the batch."""
    import json

    import redis

    from channels_adapters.models import InboundEvent
    from channels_adapters.services import inbound_events_process
    from knowledge.tasks import bot_messages_turn

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    texts = [
        ("b1", "How long does shipping take?"),
        ("b2", "I forgot my password"),
        ("b1", "How do I cancel?"),
    ]
    events = [
        InboundEvent.objects.create(
            channel=channel,
            content_type="application/json",
            body=json.dumps(
                {"external_id": f"bb-{n}", "from": {"phone": f"+1415555010{a[-1]}"}, "text": t}
            ).encode(),
        )
        for n, (a, t) in enumerate(texts)
    ]
    inbound_events_process(event_ids=[e.pk for e in events])

    assert BotTurn.objects.filter(done_at__isnull=True).count() == 3
    tasks = [json.loads(raw)["headers"] for raw in broker.lrange("celery", 0, -1)]
    bot_tasks = [t for t in tasks if t["task"].startswith("knowledge.tasks.bot_")]
    assert [t["task"] for t in bot_tasks] == ["knowledge.tasks.bot_messages_turn"]
    # The task as the worker runs it: each customer's turns in the order they wrote.
    first, password, cancel = messages_by_external_id("bb-0", "bb-1", "bb-2")
    assert bot_messages_turn(sorted([password.pk, cancel.pk])) == ["answered", "answered", "answered"]
    shipping, cancelling = bot_texts(first.case_id)
    assert shipping.meta["bot"]["article"] == kb["shipping-times-and-costs"].pk
    assert cancelling.meta["bot"]["article"] == kb["cancel-an-order"].pk
    assert len(bot_texts(password.case_id)) == 1
    # Delivered again (acks_late): nothing left to do.
    assert bot_messages_turn([password.pk, cancel.pk]) == []


def messages_by_external_id(*ids):
    from conversations.models import Message

    by_id = {m.external_id: m for m in Message.objects.filter(external_id__in=ids)}
    return [by_id[i] for i in ids]
