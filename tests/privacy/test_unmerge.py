from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from channels_adapters.base import Sender
from conversations.cases import case_labels_set, case_note_add, set_case_status
from conversations.models import Case, Label, Message
from conversations.services import receive_inbound, send_reply
from customers.models import Customer, CustomerMerge
from customers.services import merge_customers
from kpis.models import CaseSla, SurveyAnswer, SurveyRequest
from privacy.unmerge import customer_unmerge
from tests.factories import ChannelFactory, provider_accepts
from tests.privacy.state import db_state

pytestmark = pytest.mark.django_db


def _two_customers(agent, *, resolve_first=False):
    channel = ChannelFactory()
    a = receive_inbound(
        channel=channel, sender=Sender("phone", "+14155550123", "Ana"), external_id="1", text="a"
    )
    reply = send_reply(case=a.message.case, author_user=agent, body="b")
    provider_accepts(reply)
    case_labels_set(case=a.message.case, labels=[Label.objects.create(name="vip")], by=agent)
    b = receive_inbound(channel=channel, sender=Sender("email", "ana@example.com"), external_id="2", text="c")
    case_labels_set(case=b.message.case, labels=[Label.objects.create(name="refund")], by=agent)
    case_note_add(case=b.message.case, author_user=agent, body="checked the order")
    CaseSla.objects.create(case=b.message.case, first_response_due=timezone.now() + timedelta(hours=1))
    request = SurveyRequest.objects.create(
        kind="csat",
        case=b.message.case,
        customer=b.message.thread.customer,
        created_at=timezone.now(),
        send_after=timezone.now(),
        status="answered",
    )
    SurveyAnswer.objects.create(
        request=request,
        kind="csat",
        score=5,
        case=b.message.case,
        customer=b.message.thread.customer,
        via="link",
        answered_at=timezone.now(),
    )
    if resolve_first:
        set_case_status(case=a.message.case, status="resolved", by=agent)
    survivor = Customer.objects.get(pk=a.message.thread.customer_id)
    merged = Customer.objects.get(pk=b.message.thread.customer_id)
    merged.attributes = {"plan": "gold"}
    merged.save()
    survivor.attributes = {"plan": "silver", "city": "Madrid"}
    survivor.save()
    return survivor, merged


@pytest.mark.parametrize("resolve_first", [False, True], ids=["folded-case", "separate-cases"])
def test_unmerge_restores_the_exact_prior_state(agent, resolve_first):
    survivor, merged = _two_customers(agent, resolve_first=resolve_first)
    before = db_state()
    merged_pk = merged.pk

    record = merge_customers(survivor=survivor, merged=merged, merged_by=agent)
    assert db_state() != before
    assert bool(record.merged_snapshot.get("folded")) is not resolve_first

    restored = customer_unmerge(merge=record, user=agent)

    assert restored.pk == merged_pk
    after = db_state()
    for key in before:
        assert after[key] == before[key], key
    record.refresh_from_db()
    assert record.unmerged_at is not None and record.unmerged_by == agent
    entry = AuditEntry.objects.get(action=AuditAction.CUSTOMER_UNMERGED)
    assert entry.actor == agent and entry.target_id == str(survivor.pk)
    assert entry.details["restored_customer_id"] == merged_pk


def test_what_arrived_after_the_merge_stays_with_the_survivor(agent):
    survivor, merged = _two_customers(agent, resolve_first=True)
    merged_pk = merged.pk
    record = merge_customers(survivor=survivor, merged=merged, merged_by=agent)
    channel = Message.objects.filter(channel__isnull=False).first().channel
    later = receive_inbound(
        channel=channel, sender=Sender("email", "ana@example.com"), external_id="3", text="after"
    )

    customer_unmerge(merge=record, user=agent)

    later.message.refresh_from_db()
    # The email address went back to the merged customer, the message written after the merge did not.
    assert later.message.thread.customer_id == survivor.pk
    assert Customer.objects.get(pk=merged_pk).identities.get().address == "ana@example.com"
    assert Case.objects.filter(thread__customer_id=merged_pk).count() == 1


def test_a_merge_is_undone_once(agent):
    survivor, merged = _two_customers(agent)
    record = merge_customers(survivor=survivor, merged=merged, merged_by=agent)
    customer_unmerge(merge=record, user=agent)
    record = CustomerMerge.objects.get(pk=record.pk)
    with pytest.raises(ValidationError, match="already undone"):
        customer_unmerge(merge=record, user=agent)
