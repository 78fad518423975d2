"""Marking, fulfilling and withdrawing a commitment: the row, the thread's event line, the rules."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from commitments import selectors, services
from commitments.models import Commitment, CommitmentStatus
from conversations.models import Message, MessageKind
from conversations.services import system_event_add
from customers.services import merge_customers
from tests.factories import CaseFactory, CustomerFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db


def _events(thread):
    return list(
        Message.objects.filter(thread=thread, kind=MessageKind.SYSTEM)
        .order_by("pk")
        .values_list("body", flat=True)
    )


def test_marking_a_customer_message_records_the_promise_and_an_event_line(agent):
    message = MessageFactory(body="Can you replace the cracked jar?")
    due = timezone.localdate() + timedelta(days=5)
    commitment = services.commitment_create(
        message=message, text="  Replacement approved, ships in 5 days ", due_on=due, by=agent
    )
    commitment.refresh_from_db()
    assert commitment.text == "Replacement approved, ships in 5 days"
    assert commitment.customer_id == message.thread.customer_id
    assert commitment.case_id == message.case_id
    assert commitment.status == CommitmentStatus.OPEN and commitment.created_by == agent
    [event] = Message.objects.filter(thread=message.thread, kind=MessageKind.SYSTEM)
    assert event.case_id == message.case_id and event.author_user == agent
    assert "Replacement approved, ships in 5 days" in event.body and due.isoformat() in event.body
    assert [
        c.pk for c in selectors.customer_open_commitments(user=agent, customer_id=commitment.customer_id)
    ] == [commitment.pk]


@pytest.mark.parametrize(
    ("close", "status", "verb"),
    [
        (services.commitment_fulfil, CommitmentStatus.FULFILLED, "fulfilled"),
        (services.commitment_withdraw, CommitmentStatus.WITHDRAWN, "withdrawn"),
    ],
)
def test_closing_a_commitment_is_recorded_on_the_thread_and_unpins_it(agent, close, status, verb):
    message = MessageFactory()
    commitment = services.commitment_create(message=message, text="Refund by Friday", by=agent)
    closer = UserFactory()
    closed = close(commitment=commitment, by=closer, note="done by bank transfer")
    closed.refresh_from_db()
    assert closed.status == status and closed.closed_by == closer and closed.closed_at is not None
    assert closed.close_note == "done by bank transfer"
    events = _events(message.thread)
    assert len(events) == 2
    assert (
        events[1].startswith(f"Commitment {verb} by {closer.first_name}") and "Refund by Friday" in events[1]
    )
    assert selectors.customer_open_commitments(user=agent, customer_id=commitment.customer_id) == []
    # Only an open commitment closes; the second attempt says why and writes nothing.
    with pytest.raises(ValidationError, match="already"):
        services.commitment_fulfil(commitment=commitment, by=agent)
    assert len(_events(message.thread)) == 2


@pytest.mark.parametrize(
    ("text", "due_days", "error"),
    [
        ("   ", None, "Say what was promised"),
        ("x" * 1001, None, "under 1000"),
        ("Refund", -1, "past"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(agent, text, due_days, error):
    message = MessageFactory()
    due = timezone.localdate() + timedelta(days=due_days) if due_days is not None else None
    with pytest.raises(ValidationError, match=error):
        services.commitment_create(message=message, text=text, due_on=due, by=agent)
    assert not Commitment.objects.exists() and _events(message.thread) == []


def test_an_event_line_cannot_be_marked(agent):
    case = CaseFactory()
    event = system_event_add(thread=case.thread, case=case, text="Case resolved")
    with pytest.raises(ValidationError, match="event line"):
        services.commitment_create(message=event, text="Resolved", by=agent)
    assert not Commitment.objects.exists()


def test_an_agent_of_another_team_cannot_see_or_act(org, settings):
    billing_case = CaseFactory(team=org["billing"])
    note = MessageFactory(case=billing_case, kind=MessageKind.NOTE, direction="out", author="agent")
    said = MessageFactory(case=billing_case, body="Promised by phone: refund on Friday")
    on_note = services.commitment_create(message=note, text="Refund on Friday", by=org["ana"])
    on_words = services.commitment_create(message=said, text="Refund on Friday", by=org["ana"])
    customer_id = billing_case.thread.customer_id
    # The customer then phones, and the call lands with Sales.
    CaseFactory(thread=billing_case.thread, team=org["sales"], status="resolved")

    def seen(user):
        return {c.pk for c in selectors.customer_open_commitments(user=user, customer_id=customer_id)}

    assert seen(org["ana"]) == seen(org["boss"]) == {on_note.pk, on_words.pk}
    # Bo (Sales) sees what the customer was told, as he sees that conversation; never the note.
    assert seen(org["bo"]) == {on_words.pk}
    settings.HELPDESK = {**settings.HELPDESK, "OTHER_TEAMS_HISTORY": "hidden"}
    assert seen(org["bo"]) == set()
    assert selectors.commitment_for_agent(user=org["bo"], pk=on_words.pk) is None
    # Acting needs the case: refused whatever he sees, and nothing changes.
    for close in (services.commitment_fulfil, services.commitment_withdraw):
        with pytest.raises(PermissionDenied):
            close(commitment=on_words, by=org["bo"])
    with pytest.raises(PermissionDenied):
        services.commitment_create(message=said, text="Mine", by=org["bo"])
    assert Commitment.objects.filter(status=CommitmentStatus.OPEN).count() == 2
    assert Commitment.objects.count() == 2
    # The supervisor may act on every case.
    services.commitment_fulfil(commitment=on_words, by=org["boss"])


def test_a_merge_keeps_the_promises_of_the_merged_customer(agent):
    survivor = CustomerFactory()
    merged_case = CaseFactory()
    message = MessageFactory(case=merged_case)
    commitment = services.commitment_create(message=message, text="Call back Monday", by=agent)
    merge_customers(survivor=survivor, merged=merged_case.thread.customer)
    commitment.refresh_from_db()
    assert commitment.customer_id == survivor.pk and commitment.status == CommitmentStatus.OPEN
    assert [c.pk for c in selectors.customer_open_commitments(user=agent, customer_id=survivor.pk)] == [
        commitment.pk
    ]


def test_a_folded_case_hands_its_promises_to_the_case_that_keeps_its_messages(agent):
    keep_case = CaseFactory()
    gone_case = CaseFactory()
    message = MessageFactory(case=gone_case)
    commitment = services.commitment_create(message=message, text="Refund", by=agent)
    merge_customers(survivor=keep_case.thread.customer, merged=gone_case.thread.customer)
    commitment.refresh_from_db()
    assert commitment.case_id == keep_case.pk == Message.objects.get(pk=message.pk).case_id


@pytest.mark.django_db(transaction=True)  # so that "inside a transaction" means the write's own
def test_each_write_is_announced_inside_its_transaction_for_the_webhook_outbox(agent):
    from django.db import connection

    from conversations.signals import domain_event

    heard = []

    def listen(sender, event, payload, ordering_key, **kwargs):
        if event.startswith("commitment."):
            heard.append((event, payload["commitment"]["status"], ordering_key, connection.in_atomic_block))

    domain_event.connect(listen, dispatch_uid="test.commitments")
    try:
        message = MessageFactory()
        commitment = services.commitment_create(message=message, text="Refund", by=agent)
        services.commitment_withdraw(commitment=commitment, by=agent)
    finally:
        domain_event.disconnect(dispatch_uid="test.commitments")
    key = f"customer:{message.thread.customer_id}"
    assert heard == [
        ("commitment.created", "open", key, True),
        ("commitment.withdrawn", "withdrawn", key, True),
    ]
