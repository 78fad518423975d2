"""An inbound message is written whole or not at all: its customer, identity,
thread and case share the message's transaction."""

import threading

import pytest
from django.db import DataError, connection

from channels_adapters.base import Sender
from conversations.models import Case, Message, Thread
from conversations.services import receive_inbound, record_echo
from customers.models import Customer, Identity
from tests.factories import ChannelFactory


def nothing_written() -> bool:
    return not (
        Customer.objects.exists()
        or Identity.objects.exists()
        or Thread.objects.exists()
        or Case.objects.exists()
        or Message.objects.exists()
    )


@pytest.mark.django_db
def test_a_message_that_fails_leaves_no_customer_behind():
    channel = ChannelFactory()
    with pytest.raises(DataError):
        # A kind longer than its column: the database refuses the message row itself.
        receive_inbound(
            channel=channel,
            sender=Sender("email", "first.contact@example.com", "First Contact"),
            external_id="in-1",
            text="hello",
            kind="k" * 20,
        )
    assert nothing_written()


@pytest.mark.django_db
def test_an_echo_that_fails_leaves_no_customer_behind():
    channel = ChannelFactory()
    with pytest.raises(DataError):
        record_echo(
            channel=channel,
            recipient=Sender("facebook", "PSID-new"),
            external_id="echo-1",
            text="sent from the page's inbox",
            kind="k" * 20,
        )
    assert nothing_written()


@pytest.mark.django_db(transaction=True)
def test_two_first_messages_from_one_new_address_make_one_customer():
    # The loser of the (kind, address) race reads the winner's row inside its
    # own transaction, and both messages land on one thread.
    channel = ChannelFactory()
    barrier = threading.Barrier(2)
    errors = []

    def deliver(n):
        try:
            barrier.wait()
            receive_inbound(
                channel=channel,
                sender=Sender("phone", "+14155550199", "Race"),
                external_id=f"race-{n}",
                text=f"message {n}",
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Customer.objects.count() == 1 and Identity.objects.count() == 1
    assert Message.objects.filter(thread__customer=Customer.objects.get()).count() == 2


@pytest.mark.django_db
def test_a_known_id_from_a_new_address_is_a_duplicate_and_creates_no_customer():
    channel = ChannelFactory()
    receive_inbound(channel=channel, sender=Sender("twitter", "111"), external_id="dm-1", text="hi")
    again = receive_inbound(channel=channel, sender=Sender("twitter", "222"), external_id="dm-1", text="hi")
    assert again.created is False
    assert list(Identity.objects.values_list("address", flat=True)) == ["111"]
    assert Customer.objects.count() == 1
