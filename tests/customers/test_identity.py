import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from channels_adapters.base import Sender
from conversations.models import Message, Thread
from conversations.services import receive_inbound
from customers.identity import email_normalize, phone_normalize
from customers.models import Customer, Identity
from customers.services import identity_add, identity_resolve
from tests.factories import ChannelFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "raw",
    ["+14155550123", "whatsapp:+14155550123", "14155550123", "(415) 555-0123", "+1 415-555-0123"],
)
def test_phone_numbers_normalize_to_e164(raw):
    assert phone_normalize(raw) == "+14155550123"


def test_impossible_phone_is_a_clear_error():
    with pytest.raises(ValidationError, match="not a"):
        phone_normalize("12")


def test_email_lowercased_and_validated():
    assert email_normalize("  Ana.Silva@Example.COM ") == "ana.silva@example.com"
    with pytest.raises(ValidationError):
        email_normalize("no-at-sign")


def test_same_phone_on_two_channels_is_one_customer():
    sms_like, whatsapp_like = ChannelFactory(), ChannelFactory()
    first = receive_inbound(
        channel=sms_like,
        sender=Sender("phone", "+1 (415) 555-0123", "Ana"),
        external_id="a-1",
        text="My order is late",
    )
    second = receive_inbound(
        channel=whatsapp_like,
        sender=Sender("phone", "whatsapp:+14155550123"),
        external_id="b-1",
        text="Any news?",
    )
    assert first.message.thread_id == second.message.thread_id
    assert Customer.objects.count() == 1
    assert Identity.objects.get().address == "+14155550123"
    assert second.message.case_id == first.message.case_id


def test_email_identity_is_case_insensitive():
    channel = ChannelFactory()
    a = receive_inbound(
        channel=channel, sender=Sender("email", "Ana@Example.com"), external_id="1", text="hi"
    )
    b = receive_inbound(
        channel=channel, sender=Sender("email", "ana@example.COM"), external_id="2", text="hi"
    )
    assert a.message.thread_id == b.message.thread_id
    assert Identity.objects.filter(kind="email").count() == 1


def test_first_contact_takes_the_name_given():
    identity = identity_resolve(kind="telegram", address="777", name="Bea")
    assert identity.customer.name == "Bea"
    # A later nameless message does not erase it.
    assert identity_resolve(kind="telegram", address="777").customer.name == "Bea"


def test_one_thread_per_customer_is_enforced_by_the_database():
    customer = CustomerFactory()
    assert Thread.objects.filter(customer=customer).count() == 1
    with pytest.raises(IntegrityError):
        Thread.objects.create(customer=customer)


def test_identity_added_by_an_agent_routes_later_messages_to_the_customer():
    channel = ChannelFactory()
    phone_first = receive_inbound(
        channel=channel, sender=Sender("phone", "+14155550123"), external_id="p1", text="hi"
    )
    customer = phone_first.message.thread.customer
    identity_add(customer=customer, kind="email", address="Ana@Example.com")
    by_email = receive_inbound(
        channel=channel, sender=Sender("email", "ana@example.com"), external_id="e1", text="hi"
    )
    assert by_email.message.thread_id == phone_first.message.thread_id
    assert Message.objects.filter(thread__customer=customer).count() == 2


def test_identity_of_another_customer_cannot_be_added():
    other = identity_resolve(kind="email", address="taken@example.com")
    with pytest.raises(ValidationError, match="merge"):
        identity_add(customer=CustomerFactory(), kind="email", address="TAKEN@example.com")
    assert Identity.objects.get(address="taken@example.com").customer_id == other.customer_id
