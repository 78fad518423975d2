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
