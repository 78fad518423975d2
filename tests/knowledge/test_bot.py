"""The bot's pipeline on PostgreSQL: answer, resolve, hand over, stay away from agents' cases.

Each customer message is written (the receiver queues the bot's turn), then the
queued turn is taken by calling the Celery task after commit, as the worker
would (`take_bot_turns`); test_bot_worker.py runs the same turns through a real
worker, and the orderings a queue allows.
"""

import itertools
from datetime import UTC

import pytest

from channels_adapters.base import Sender
from conversations import services
from conversations.cases import assign_case
from conversations.models import Author, CaseStatus, Direction, Message, MessageKind
from knowledge.models import BotSession, BotTurn, UnansweredQuestion
from tests.factories import ChannelFactory, UserFactory, provider_accepts

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


def bot_channel(kind="api", mode="always", **settings):
    channel = ChannelFactory(kind=kind, settings={"bot": {"mode": mode, "name": "Lola"}, **settings})
    if kind == "telegram":
        channel.credentials = {"bot_token": "1:x", "secret_token": "s"}
        channel.save()
    return channel


@pytest.fixture
def write(run_on_commit, take_bot_turns):
    """A customer's message committed, then the bot's queued turn taken (the worker's part)."""

    def write(channel, text, *, address="cust-1", take=True):
        kind = {"api": "api", "telegram": "telegram", "voice": "phone", "sms": "phone"}[channel.kind]
        result = run_on_commit(
            services.receive_inbound,
            channel=channel,
            sender=Sender(kind=kind, address=address),
            external_id=f"in-{next(_ids)}",
            text=text,
        )
        if take:
            take_bot_turns()
        return result.message

    return write


def bot_lines(case):
    return list(Message.objects.filter(case=case, author=Author.BOT, kind=MessageKind.TEXT).order_by("id"))


def events(case):
    return list(Message.objects.filter(case=case, kind=MessageKind.SYSTEM).values_list("body", flat=True))


def test_confident_match_is_answered_with_the_article_and_numbered_choices(kb, write):
    channel = bot_channel()
    message = write(channel, "I forgot my password and cannot log in")
    [answer] = bot_lines(message.case)
    article = kb["reset-your-password"]
    assert article.public_url in answer.body
    assert "Lola" in answer.body and "1 Yes / 2 Talk to a person" in answer.body
    assert answer.direction == Direction.OUT and answer.status == "queued"
    assert answer.channel == channel and answer.meta["bot"]["article"] == article.pk
    assert "quick_replies" not in answer.meta  # an API channel has no buttons of its own
    session = BotSession.objects.get(case=message.case)
    assert session.state == BotSession.State.AWAITING and session.language == "en"


def test_spanish_question_is_answered_in_spanish_with_native_buttons(kb, write):
    channel = bot_channel(kind="telegram")
    message = write(channel, "¿Cuándo recibo el reembolso de mi devolución?", address="777")
    [answer] = bot_lines(message.case)
    assert kb["cuando-recibo-mi-reembolso"].public_url in answer.body
    assert "¿Te ha resuelto la duda?" in answer.body
    assert answer.meta["quick_replies"] == ["Sí", "Hablar con alguien"]
    assert "1 Sí" not in answer.body


def test_yes_resolves_the_case_as_resolved_by_the_bot(kb, write):
    channel = bot_channel()
    case = write(channel, "How can I return an item?").case
    write(channel, "1")
    case.refresh_from_db()
    assert case.status == CaseStatus.RESOLVED
    assert BotSession.objects.get(case=case).state == BotSession.State.RESOLVED
    assert any("Resolved by the bot" in e for e in events(case))
    assert case.first_response_at is None  # the bot's answers are no response


def test_humano_hands_over_at_once_keeping_priority_and_team(kb, write, org):
    channel = bot_channel(kind="telegram")
    case = write(channel, "¿Dónde está mi pedido?", address="778").case
    case.priority, case.team = 3, org["billing"]
    case.save()
    waiting = case.waiting_since
    write(channel, "quiero hablar con un humano", address="778")
    case.refresh_from_db()
    session = BotSession.objects.get(case=case)
    assert session.state == BotSession.State.HANDED_OFF and session.handoff_reason == "asked"
    assert case.status == CaseStatus.OPEN and case.priority == 3 and case.team == org["billing"]
    assert case.waiting_since == waiting  # still first in line, from the first message
    assert any(e.startswith("Handed over by the bot") for e in events(case))
    # The bot is silent from then on: no loop.
    before = len(bot_lines(case))
    write(channel, "¿hola?", address="778")
    assert len(bot_lines(case)) == before
    # One turn per customer message, none for the bot's own lines; the last one silent.
    turns = BotTurn.objects.filter(message__case=case).order_by("message_id")
    assert list(turns.values_list("outcome", flat=True)) == ["answered", "handed_off", "silent"]


def test_low_confidence_question_hands_over_and_is_recorded_as_unanswered(kb, write):
    channel = bot_channel()
    case = write(channel, "Do you sell gift cards for my grandmother's birthday?").case
    session = BotSession.objects.get(case=case)
    assert session.state == BotSession.State.HANDED_OFF and session.handoff_reason == "low_confidence"
    [question] = UnansweredQuestion.objects.all()
    assert question.case == case and "gift cards" in question.text
    assert all(kb["reset-your-password"].public_url not in m.body for m in bot_lines(case))


def test_no_hands_over_and_a_second_question_is_the_last_attempt(kb, write):
    channel = bot_channel()
    case = write(channel, "How long does shipping take?", address="a").case
    write(channel, "2", address="a")
    assert BotSession.objects.get(case=case).handoff_reason == "not_solved"

    other = write(channel, "How long does shipping take?", address="b").case
    write(channel, "And how do I cancel an order?", address="b")
    write(channel, "What about my invoice?", address="b")
    session = BotSession.objects.get(case=other)
    assert session.answers == 2 and session.handoff_reason == "attempts"


def test_a_case_an_agent_has_touched_gets_no_bot(kb, write, org):
    channel = ChannelFactory(kind="api")  # the bot is off when the case opens
    case = write(channel, "hello there", address="d").case
    assign_case(case=case, assignee=org["ana"], by=org["ana"])
    channel.settings = {"bot": {"mode": "always"}}
    channel.save()
    write(channel, "How do I reset my password?", address="d")
    assert not bot_lines(case)
    assert not BotSession.objects.filter(case=case).exists()


def test_an_agent_reply_silences_the_bot_mid_conversation(kb, write):
    channel = bot_channel()
    case = write(channel, "How do I reset my password?", address="e").case
    services.send_reply(case=case, author_user=UserFactory(), body="I'm on it")
    write(channel, "thanks, also where is my order?", address="e")
    assert len(bot_lines(case)) == 1
    assert BotSession.objects.get(case=case).handoff_reason == "agent"


def test_never_on_voice_and_never_when_switched_off(kb, write):
    off = ChannelFactory(kind="api")
    case = write(off, "How do I reset my password?", address="f").case
    assert not bot_lines(case) and not BotSession.objects.exists()
    voice = bot_channel(kind="voice")
    assert bot_lines(write(voice, "How do I reset my password?", address="+34600000001").case) == []
    # Decided on the inbound path from the message and its channel: not even a turn queued.
    assert not BotTurn.objects.exists()


def test_bot_messages_do_not_count_as_responses_or_in_kpis(kb, write):
    from datetime import timedelta

    from django.utils import timezone

    from kpis.selectors import kpi_report

    channel = bot_channel()
    case = write(channel, "How do I reset my password?", address="g").case
    [answer] = bot_lines(case)
    provider_accepts(answer)  # the provider took the bot's message
    case.refresh_from_db()
    assert case.first_response_at is None and case.waiting_since is not None
    today = timezone.now().date()
    report = kpi_report(start=today, end=today + timedelta(days=1))
    assert report["totals"]["tme_seconds"] is None


def test_outside_hours_mode_answers_only_when_the_team_is_closed(kb, write, time_machine):
    from datetime import datetime

    from kpis.models import BusinessHours

    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    BusinessHours.objects.create(name="Office", weekly={d: [["09:00", "18:00"]] for d in days})
    channel = bot_channel(mode="outside_hours")
    time_machine.move_to(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), tick=False)
    open_case = write(channel, "How do I reset my password?", address="day").case
    assert not bot_lines(open_case)  # the team is at work: people answer
    time_machine.move_to(datetime(2026, 12, 1, 22, 0, tzinfo=UTC), tick=False)
    night_case = write(channel, "How do I reset my password?", address="night").case
    assert len(bot_lines(night_case)) == 1


# The queue between the customer's message and the bot's turn: what may happen in between.


def test_the_inbound_path_only_queues_the_turn(kb, write, take_bot_turns):
    message = write(bot_channel(), "I forgot my password and cannot log in", take=False)
    # Committed and announced: the turn is due, nothing of the bot's is written yet.
    assert BotTurn.objects.get(message=message).done_at is None
    assert not bot_lines(message.case) and not BotSession.objects.exists()
    assert take_bot_turns() == ["answered"]
    assert len(bot_lines(message.case)) == 1


def test_an_agent_answering_before_the_turn_runs_gets_no_bot_answer(kb, write, take_bot_turns):
    message = write(bot_channel(), "How do I reset my password?", address="h", take=False)
    services.send_reply(case=message.case, author_user=UserFactory(), body="Hi, I'm Ana, looking at it")
    # The turn re-checks the case when it runs: the agent has it.
    assert take_bot_turns() == ["silent"]
    assert not bot_lines(message.case) and not BotSession.objects.exists()


def test_a_channel_switched_off_before_the_turn_runs_stays_silent(kb, write, take_bot_turns):
    channel = bot_channel()
    message = write(channel, "How do I reset my password?", address="i", take=False)
    channel.settings = {}
    channel.save()
    assert take_bot_turns() == ["silent"] and not bot_lines(message.case)


def test_the_task_run_twice_answers_once(kb, write, run_on_commit):
    from knowledge.tasks import bot_message_turn

    message = write(bot_channel(), "How do I reset my password?", address="j", take=False)
    assert run_on_commit(bot_message_turn, message.pk) == ["answered"]
    # A redelivery (acks_late after a worker died past its commit) finds the turn done.
    assert run_on_commit(bot_message_turn, message.pk) == []
    assert len(bot_lines(message.case)) == 1
    assert BotSession.objects.get(case=message.case).answers == 1


def test_two_quick_messages_are_answered_in_order_once_whatever_task_runs_first(kb, write, run_on_commit):
    from knowledge.tasks import bot_message_turn

    channel = bot_channel()
    first = write(channel, "How long does shipping take?", address="k", take=False)
    second = write(channel, "And how do I cancel an order?", address="k", take=False)
    # Two workers, or a retry: the second message's task may start first. It takes the
    # customer's earlier turn first, then its own; the first task then has nothing left.
    assert run_on_commit(bot_message_turn, second.pk) == ["answered", "answered"]
    assert run_on_commit(bot_message_turn, first.pk) == []
    shipping, cancel = bot_lines(first.case)
    assert "Lola" in shipping.body  # the introduction goes with the first answer
    assert shipping.meta["bot"]["article"] == kb["shipping-times-and-costs"].pk
    assert cancel.meta["bot"]["article"] == kb["cancel-an-order"].pk
    assert BotSession.objects.get(case=first.case).answers == 2


def test_a_lost_turn_is_queued_again_and_a_stale_one_dropped(kb, write, run_on_commit):
    from datetime import timedelta

    from django.utils import timezone

    from knowledge.bot import bot_turns_redrive

    channel = bot_channel()
    lost = write(channel, "How do I reset my password?", address="l", take=False)
    stale = write(channel, "How do I reset my password?", address="m", take=False)
    BotTurn.objects.filter(message=lost).update(queued_at=timezone.now() - timedelta(minutes=2))
    BotTurn.objects.filter(message=stale).update(queued_at=timezone.now() - timedelta(hours=1))
    assert run_on_commit(bot_turns_redrive) == {"requeued": 1, "stale": 1}
    # Too late to be useful: left to the agents, never answered by a later task.
    assert BotTurn.objects.get(message=stale).outcome == BotTurn.Outcome.STALE
    assert BotTurn.objects.get(message=lost).done_at is None


def test_a_turn_whose_task_comes_too_late_is_dropped(kb, write, run_on_commit):
    from datetime import timedelta

    from django.utils import timezone

    from knowledge.tasks import bot_message_turn

    message = write(bot_channel(), "How do I reset my password?", address="n", take=False)
    BotTurn.objects.filter(message=message).update(queued_at=timezone.now() - timedelta(hours=1))
    # The workers were down for an hour: the backlog is the agents', not answered now.
    assert run_on_commit(bot_message_turn, message.pk) == [BotTurn.Outcome.STALE]
    assert not bot_lines(message.case)
