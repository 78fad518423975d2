import pytest
from django.core.exceptions import ValidationError

from channels_adapters.base import Sender
from conversations.models import Case, Message, MessageKind, Thread
from conversations.services import receive_inbound, send_reply
from customers.models import Customer, CustomerMerge, Identity
from customers.services import merge_customers
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def test_merge_keeps_every_message_and_makes_one_timeline(agent):
    channel = ChannelFactory()
    by_phone = receive_inbound(
        channel=channel, sender=Sender("phone", "+14155550123", "Ana"), external_id="1", text="a"
    )
    send_reply(case=by_phone.message.case, author_user=agent, body="b")
    by_email = receive_inbound(
        channel=channel, sender=Sender("email", "ana@example.com"), external_id="2", text="c"
    )
    survivor = by_phone.message.thread.customer
    merged = by_email.message.thread.customer
    merged.attributes = {"plan": "gold"}
    merged.save()
    total = Message.objects.count()

    record = merge_customers(survivor=survivor, merged=merged, merged_by=agent)

    assert not Customer.objects.filter(pk=merged.pk).exists()
    assert Thread.objects.count() == 1
    thread = Thread.objects.get()
    # Every message survives, plus one system line saying who merged what.
    assert Message.objects.filter(thread=thread).exclude(kind=MessageKind.SYSTEM).count() == total
    assert Message.objects.filter(thread=thread, kind=MessageKind.SYSTEM, body__contains="Merged")
    assert set(Identity.objects.values_list("customer_id", flat=True)) == {survivor.pk}
    # Both were open: one case in progress remains, holding both conversations.
    open_cases = Case.objects.filter(thread=thread).exclude(status="resolved")
    assert open_cases.count() == 1
    assert open_cases.get().messages.filter(body__in=["a", "b", "c"]).count() == 3
    survivor.refresh_from_db()
    assert survivor.attributes["plan"] == "gold"
    assert record.merged_by == agent and record.merged_snapshot["identities"]
    assert CustomerMerge.objects.get().moved["messages"] >= 1


def test_cannot_merge_a_customer_into_themselves():
    identity = receive_inbound(
        channel=ChannelFactory(), sender=Sender("email", "x@example.com"), external_id="1", text="a"
    ).message.identity
    with pytest.raises(ValidationError):
        merge_customers(survivor=identity.customer, merged=identity.customer)
