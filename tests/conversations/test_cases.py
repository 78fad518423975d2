from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from channels_adapters.base import Sender
from conversations.cases import assign_case, set_case_status
from conversations.models import Case, CaseStatus, Message, MessageKind
from conversations.services import add_note, receive_inbound, send_reply
from tests.factories import CaseFactory, ChannelFactory, TeamFactory, UserFactory, provider_accepts

pytestmark = pytest.mark.django_db

ANA = Sender("email", "ana@example.com", "Ana")


def _inbound(channel, external_id, text="hello", sender=ANA):
    return receive_inbound(channel=channel, sender=sender, external_id=external_id, text=text)


def test_first_message_opens_a_case_on_its_channel():
    channel = ChannelFactory()
    result = _inbound(channel, "m1", "Where is my parcel?")
    case = result.message.case
    assert case.status == CaseStatus.OPEN
    assert case.origin_channel == channel
    assert case.opened_at == result.message.created_at
    assert case.waiting_since == result.message.created_at
    assert case.subject == "Where is my parcel?"


def test_a_subject_given_by_the_channel_names_the_case():
    result = receive_inbound(
        channel=ChannelFactory(),
        sender=ANA,
        external_id="<m@example.com>",
        text="Hello,\nmy invoice is wrong.",
        meta={"subject": "Invoice 2291 is wrong"},
    )
    assert result.message.case.subject == "Invoice 2291 is wrong"


def test_duplicate_external_id_is_one_message():
    channel = ChannelFactory()
    first = _inbound(channel, "dup")
    again = _inbound(channel, "dup")
    assert again.created is False
    assert again.message.pk == first.message.pk
    assert Message.objects.count() == 1


def test_same_external_id_on_two_channels_is_two_messages():
    _inbound(ChannelFactory(), "same")
    _inbound(ChannelFactory(), "same")
    assert Message.objects.count() == 2


def test_reply_within_reopen_window_reopens_the_same_case(agent):
    channel = ChannelFactory()
    case = _inbound(channel, "m1").message.case
    provider_accepts(send_reply(case=case, author_user=agent, body="Shipped today"))
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)
    with time_machine.travel(timezone.now() + timedelta(days=6, hours=23)):
        again = _inbound(channel, "m2", "It did not arrive").message.case
    assert again.pk == case.pk
    again.refresh_from_db()
    assert again.status == CaseStatus.OPEN
    assert again.reopen_count == 1
    assert again.resolved_at is None
    # Reopening keeps the original clock: opened_at and first response stay.
    assert again.opened_at == case.opened_at
    assert again.first_response_at is not None


def test_message_after_reopen_window_opens_a_new_case(agent):
    channel = ChannelFactory()
    case = _inbound(channel, "m1").message.case
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        new = _inbound(channel, "m2").message.case
    assert new.pk != case.pk
    assert new.thread_id == case.thread_id
    assert Case.objects.filter(thread=case.thread).count() == 2


def test_customer_reply_wakes_a_pending_case(agent):
    channel = ChannelFactory()
    case = _inbound(channel, "m1").message.case
    set_case_status(case=case, status=CaseStatus.PENDING, by=agent)
    woken = _inbound(channel, "m2").message.case
    assert woken.pk == case.pk and woken.status == CaseStatus.OPEN


def test_only_one_unresolved_case_per_thread_in_the_database():
    case = CaseFactory()
    with pytest.raises(IntegrityError):
        Case.objects.create(thread=case.thread, opened_at=timezone.now())


def test_reply_records_first_response_and_stops_the_wait(agent):
    channel = ChannelFactory()
    case = _inbound(channel, "m1").message.case
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        reply = send_reply(case=case, author_user=agent, body="On it")
    case.refresh_from_db()
    # Queued is not answered (issue 18): the reply counts once the provider accepts it.
    assert reply.status == "queued" and reply.channel == channel
    assert case.first_response_at is None and case.waiting_since == case.opened_at
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        reply = provider_accepts(reply)
    case.refresh_from_db()
    assert case.first_response_at == reply.sent_at
    assert case.waiting_since is None
    assert (case.first_response_at - case.opened_at) >= timedelta(minutes=6)


def test_note_is_not_a_response(agent):
    case = _inbound(ChannelFactory(), "m1").message.case
    note = add_note(case=case, author_user=agent, body="VIP, be gentle")
    case.refresh_from_db()
    assert note.kind == MessageKind.NOTE and note.channel is None
    assert case.first_response_at is None


def test_reply_goes_to_the_customers_latest_channel(agent):
    first, latest = ChannelFactory(), ChannelFactory()
    _inbound(first, "m1")
    case = _inbound(latest, "m2").message.case
    assert send_reply(case=case, author_user=agent, body="Hi").channel == latest
    chosen = send_reply(case=case, author_user=agent, body="Hi", channel=first)
    assert chosen.channel == first


def test_reply_to_unreachable_customer_is_a_clear_error(agent):
    case = _inbound(ChannelFactory(), "m1").message.case
    inactive = ChannelFactory(is_active=False)
    with pytest.raises(ValidationError, match="switched off"):
        send_reply(case=case, author_user=agent, body="Hi", channel=inactive)
    with pytest.raises(ValidationError, match="needs text"):
        send_reply(case=case, author_user=agent, body="   ")


def test_assign_and_resolve_leave_system_events(agent):
    case = _inbound(ChannelFactory(), "m1").message.case
    supervisor = UserFactory(role="supervisors")
    team = TeamFactory(name="Billing")
    assign_case(case=case, assignee=agent, team=team, by=supervisor)
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)
    case.refresh_from_db()
    assert case.assignee == agent and case.team == team and case.resolved_at is not None
    events = list(Message.objects.filter(case=case, kind=MessageKind.SYSTEM).values_list("body", flat=True))
    assert any("assigned to" in e and "Billing" in e for e in events)
    assert any("resolved" in e for e in events)


def test_non_agent_cannot_be_assigned():
    from django.contrib.auth import get_user_model

    case = CaseFactory()
    outsider = get_user_model().objects.create_user("outsider", password="x")
    with pytest.raises(ValidationError, match="not an agent"):
        assign_case(case=case, assignee=outsider)


def test_snooze_needs_a_future_time(agent):
    case = CaseFactory()
    with pytest.raises(ValidationError, match="future"):
        set_case_status(case=case, status=CaseStatus.SNOOZED, by=agent)
    until = timezone.now() + timedelta(hours=2)
    snoozed = set_case_status(case=case, status=CaseStatus.SNOOZED, by=agent, snoozed_until=until)
    assert snoozed.snoozed_until == until


def test_snoozed_case_wakes_when_its_time_comes(agent):
    from conversations.cases import cases_snooze_wake

    due = CaseFactory()
    later = CaseFactory()
    soon = timezone.now() + timedelta(minutes=10)
    set_case_status(case=due, status=CaseStatus.SNOOZED, by=agent, snoozed_until=soon)
    set_case_status(case=later, status=CaseStatus.SNOOZED, by=agent, snoozed_until=soon + timedelta(days=1))

    assert cases_snooze_wake() == 0, "nothing is due yet"
    with time_machine.travel(soon + timedelta(seconds=1)):
        assert cases_snooze_wake() == 1
        assert cases_snooze_wake() == 0, "a second beat run finds nothing left"
    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, due.snoozed_until) == (CaseStatus.OPEN, None)
    assert later.status == CaseStatus.SNOOZED
    assert due.messages.filter(kind=MessageKind.SYSTEM, body__startswith="Snooze ended").exists()


def test_manual_reopen_refused_while_another_case_is_open(agent):
    channel = ChannelFactory()
    old = _inbound(channel, "m1").message.case
    set_case_status(case=old, status=CaseStatus.RESOLVED, by=agent)
    with time_machine.travel(timezone.now() + timedelta(days=30)):
        _inbound(channel, "m2")
    with pytest.raises(ValidationError, match="already in progress"):
        set_case_status(case=old, status=CaseStatus.OPEN, by=agent)


def test_message_update_keeps_the_previous_text(agent):
    channel = ChannelFactory()
    message = _inbound(channel, "m1", "I ordered 2").message
    from conversations.statuses import message_update

    updated = message_update(channel=channel, external_id="m1", text="I ordered 3", meta={"x": 1})
    assert updated.body == "I ordered 3"
    assert updated.meta["x"] == 1
    assert updated.meta["edits"][0]["text"] == "I ordered 2"
    assert message_update(channel=channel, external_id="unknown", text="?") is None
    assert Message.objects.get(pk=message.pk).body == "I ordered 3"


def test_watermark_receipt_covers_earlier_sends_to_that_person(agent):
    from conversations.statuses import message_status_watermark

    channel = ChannelFactory()
    case = _inbound(channel, "m1").message.case
    older = send_reply(case=case, author_user=agent, body="one")
    Message.objects.filter(pk=older.pk).update(status="sent", external_id="o1")
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        newer = send_reply(case=case, author_user=agent, body="two")
    Message.objects.filter(pk=newer.pk).update(status="sent", external_id="o2")
    moved = message_status_watermark(
        channel=channel, recipient=ANA, status="delivered", watermark=timezone.now() + timedelta(minutes=1)
    )
    assert moved == 1
    assert Message.objects.get(pk=older.pk).status == "delivered"
    assert Message.objects.get(pk=newer.pk).status == "sent"


def test_automatic_message_is_not_an_agent_response():
    from conversations.services import send_automatic

    channel = ChannelFactory()
    case = _inbound(channel, "m1").message.case
    survey = send_automatic(case=case, body="How did we do? Reply 1-5")
    case.refresh_from_db()
    assert survey.author == "bot" and survey.status == "queued" and survey.channel == channel
    assert case.first_response_at is None and case.waiting_since is not None


def test_after_a_call_the_default_reply_goes_where_the_customer_last_wrote(agent):
    api = ChannelFactory()
    voice = ChannelFactory(kind="voice", name="Phone line", credentials={})
    phone = Sender("phone", "+14155550199", "Bo")
    receive_inbound(channel=api, sender=phone, external_id="w-1", text="Refund please")
    call = receive_inbound(
        channel=voice, sender=phone, external_id="CA1", kind=MessageKind.CALL, text="Call from +14155550199"
    ).message
    reply = send_reply(case=call.case, author_user=agent, body="Refund issued")
    assert reply.channel == api
