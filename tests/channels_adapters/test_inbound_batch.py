"""A drain batch reads what its messages need at once (senders' identities, provider ids
already stored), and still writes each message in its own transaction, in order."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_adapters import services
from channels_adapters.base import Sender
from channels_adapters.models import InboundEvent
from conversations.models import Case, Message, Thread
from conversations.services import receive_inbound
from customers.models import Customer, Identity
from customers.selectors import identities_for_senders
from customers.services import merge_customers
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def body(external_id: str, phone: str, text: str = "hello", **extra) -> bytes:
    return json.dumps({"external_id": external_id, "from": {"phone": phone}, "text": text, **extra}).encode()


def store(channel, raw: bytes) -> InboundEvent:
    return InboundEvent.objects.create(channel=channel, body=raw, content_type="application/json")


def process(*events) -> list[InboundEvent]:
    return services.inbound_events_process(event_ids=[e.pk for e in events])


def test_a_failing_message_in_a_batch_affects_only_itself_and_one_customers_messages_keep_their_order():
    channel = ChannelFactory()
    process(store(channel, body("b-0", "+14155550100", "before")))  # a returning customer
    events = [
        store(channel, body("b-1", "+14155550100", "first")),
        store(channel, body("b-2", "not a phone", "nobody's")),  # fails in its write
        store(channel, body("b-3", "+14155550199", "a new customer")),
        store(channel, body("b-4", "+14155550100", "second")),
        store(channel, body("b-5", "+14155550199", "the new customer again")),
    ]
    processed = process(*events)

    assert [e.status for e in processed] == ["processed", "failed", "processed", "processed", "processed"]
    assert "not a phone" in processed[1].error
    returning = Identity.objects.get(address="+14155550100").customer
    assert list(
        Message.objects.filter(thread__customer=returning).order_by("pk").values_list("body", flat=True)
    ) == ["before", "first", "second"]
    # The customer the batch met first in its third event: made once, one case for both messages.
    new = Identity.objects.get(address="+14155550199").customer
    assert Customer.objects.count() == 2 and Thread.objects.count() == 2
    [case] = Case.objects.filter(thread__customer=new)
    assert list(case.messages.order_by("pk").values_list("body", flat=True)) == [
        "a new customer",
        "the new customer again",
    ]


def test_a_batch_reads_its_senders_in_one_query_whatever_their_number():
    channel = ChannelFactory()
    phones = [f"+1415555{n:04d}" for n in range(6)]
    process(*[store(channel, body(f"r-{n}", phone)) for n, phone in enumerate(phones)])  # all known now

    events = [store(channel, body(f"s-{n}", phone)) for n, phone in enumerate(phones)]
    with CaptureQueriesContext(connection) as captured:
        assert [e.status for e in process(*events)] == ["processed"] * 6
    identity_reads = [
        q["sql"] for q in captured.captured_queries if q["sql"].startswith('SELECT "customers_identity"')
    ]
    assert len(identity_reads) == 1


def test_a_retry_of_a_message_stored_before_the_batch_is_a_duplicate_without_a_write():
    channel = ChannelFactory()
    process(store(channel, body("d-1", "+14155550100", "once")))
    retry = store(channel, body("d-1", "+14155550100", "once"))
    with CaptureQueriesContext(connection) as captured:
        [event] = process(retry)
    assert event.status == "processed" and event.summary["duplicates"] == 1
    assert not [
        q for q in captured.captured_queries if q["sql"].startswith('INSERT INTO "conversations_message"')
    ]
    assert Message.objects.filter(external_id="d-1").count() == 1


def test_a_retry_within_the_same_batch_is_stored_once():
    channel = ChannelFactory()
    first, again = store(channel, body("d-2", "+14155550101")), store(channel, body("d-2", "+14155550101"))
    processed = process(first, again)
    assert [e.summary["messages"] for e in processed] == [1, 0]
    assert [e.summary["duplicates"] for e in processed] == [0, 1]
    assert Message.objects.filter(external_id="d-2").count() == 1


def test_an_address_merged_away_after_the_batch_read_it_lands_on_the_survivor():
    channel = ChannelFactory()
    gone = receive_inbound(channel=channel, sender=Sender("phone", "+14155550102"), external_id="m-1").message
    kept = receive_inbound(channel=channel, sender=Sender("phone", "+14155550103"), external_id="m-2").message
    batch = identities_for_senders(senders=[("phone", "+14155550102")])
    assert batch.get("phone", "+14155550102").customer_id == gone.thread.customer_id
    # Between the batch's read and this message's write, an agent merges the two customers.
    merge_customers(survivor=kept.thread.customer, merged=gone.thread.customer)

    result = receive_inbound(
        channel=channel, sender=Sender("phone", "+14155550102"), external_id="m-3", identities=batch
    )
    assert result.created and result.message.thread_id == kept.thread_id
    assert Customer.objects.count() == 1


def test_an_address_the_batch_found_nobody_at_but_someone_took_since_is_not_made_twice():
    channel = ChannelFactory()
    batch = identities_for_senders(senders=[("phone", "+14155550104")])
    assert batch.absent("phone", "+14155550104") == "+14155550104"
    # Another path (a webchat, a second drainer) makes the customer meanwhile.
    first = receive_inbound(
        channel=channel, sender=Sender("phone", "+14155550104"), external_id="n-1"
    ).message

    result = receive_inbound(
        channel=channel, sender=Sender("phone", "+14155550104"), external_id="n-2", identities=batch
    )
    assert result.message.thread_id == first.thread_id and result.message.case_id == first.case_id
    assert Customer.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_batchs_messages_commit_without_a_wal_flush_each_and_its_outcomes_flush_them():
    channel = ChannelFactory()
    events = [store(channel, body(f"w-{n}", f"+1415555020{n}")) for n in range(3)]
    with CaptureQueriesContext(connection) as captured:
        assert [e.status for e in process(*events)] == ["processed"] * 3
    sql = [q["sql"] for q in captured.captured_queries]
    off, default = sql.index("SET synchronous_commit TO off"), sql.index("SET synchronous_commit TO DEFAULT")
    inserts = [n for n, q in enumerate(sql) if q.startswith('INSERT INTO "conversations_message"')]
    outcome = next(
        n for n, q in enumerate(sql) if q.startswith('UPDATE "channels_adapters_inboundevent" SET "status"')
    )
    assert len(inserts) == 3 and off < inserts[0] and inserts[-1] < default < outcome
    # The connection goes back to the pool as it came: every later commit waits for its flush.
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


@pytest.mark.django_db(transaction=True)
def test_a_first_contact_in_a_batch_is_written_without_savepoints_in_a_counted_number_of_queries():
    channel = ChannelFactory()
    process(store(channel, body("f-0", "+14155550300")))  # the batch's fixed cost, warmed

    def first_contacts(n, start):
        events = [store(channel, body(f"f-{start + i}", f"+1415555{start + i:04d}")) for i in range(n)]
        with CaptureQueriesContext(connection) as captured:
            assert [e.status for e in process(*events)] == ["processed"] * n
        return [q["sql"] for q in captured.captured_queries]

    one, three = first_contacts(1, 400), first_contacts(3, 500)
    assert not [q for q in three if q.startswith("SAVEPOINT")]
    # Begin, customer, thread, identity, thread lock, case, message, commit.
    assert (len(three) - len(one)) // 2 == 8
    assert Customer.objects.count() == 5 and Identity.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_batchs_customers_are_looked_up_for_outreaches_to_stop_in_one_query():
    channel = ChannelFactory()
    phones = [f"+1415555{n:04d}" for n in range(600, 604)]
    process(*[store(channel, body(f"o-{n}", phone)) for n, phone in enumerate(phones)])

    events = [store(channel, body(f"p-{n}", phone)) for n, phone in enumerate(phones)]
    with CaptureQueriesContext(connection) as captured:
        assert [e.status for e in process(*events)] == ["processed"] * 4
    # After the messages' commits, once for the batch (it was once per message).
    lookups = [q["sql"] for q in captured.captured_queries if 'FROM "outreach_outreach"' in q["sql"]]
    assert len(lookups) == 1
