"""Each event comes from the real service call, as an outbox row in its transaction."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_adapters.base import Sender
from conversations import signals
from conversations.cases import assign_case, set_case_status
from conversations.delivery import message_deliver
from conversations.models import CaseStatus
from conversations.services import add_note, receive_inbound, send_reply
from conversations.statuses import message_status_update
from customers.services import merge_customers
from integrations import receivers, selectors
from integrations.models import WebhookDelivery
from kpis.models import SurveyRequest
from kpis.services import survey_answer_record
from tests.factories import ChannelFactory, UserFactory
from tests.integrations.conftest import ANA
from tests.provider_server import Reply

pytestmark = pytest.mark.django_db


def events(**filters):
    return list(WebhookDelivery.objects.filter(**filters).order_by("pk").values_list("event", flat=True))


def last(event):
    return WebhookDelivery.objects.filter(event=event).order_by("-pk").first()


def test_an_inbound_message_from_a_new_customer(subscribe, channel):
    subscription = subscribe()
    message = receive_inbound(
        channel=channel, sender=ANA, external_id="in-1", text="Where is my parcel?"
    ).message

    assert events() == ["customer.created", "case.opened", "message.created"]
    created = last("message.created")
    assert created.subscription == subscription and created.ordering_key == f"case:{message.case_id}"
    assert created.event_id.startswith("msg_")
    payload = created.payload
    assert payload["type"] == "message.created" and payload["timestamp"]
    assert payload["data"]["message"] == {
        "id": message.pk,
        "case_id": message.case_id,
        "customer_id": message.thread.customer_id,
        "channel_id": channel.pk,
        "channel_kind": "api",
        "direction": "in",
        "kind": "text",
        "author": "customer",
        "agent_id": None,
        "status": None,
        "external_id": "in-1",
        "created_at": message.created_at.isoformat(),
        "body": "Where is my parcel?",
        "attachments_count": 0,
        "address": {"kind": "email", "address": "ana@example.com"},
    }
    case = last("case.opened").payload["data"]["case"]
    assert case["id"] == message.case_id and case["status"] == "open"
    assert case["customer_id"] == message.thread.customer_id
    customer = last("customer.created").payload["data"]["customer"]
    assert customer["id"] == message.thread.customer_id and customer["name"] == "Ana Silva"
    assert last("customer.created").ordering_key == f"customer:{customer['id']}"


def test_a_reply_and_its_status_changes(subscribe, channel, receiver):
    subscribe()
    channel.credentials = {"secret": "s", "callback_url": receiver.url + "/callback"}
    channel.save()
    receiver.script(Reply(200, {"external_id": "remote-1"}), path="/callback")
    case = receive_inbound(channel=channel, sender=ANA, external_id="in-1", text="hi").message.case
    agent = UserFactory()
    reply = send_reply(case=case, author_user=agent, body="On its way")
    created = last("message.created").payload["data"]["message"]
    assert created["id"] == reply.pk and created["direction"] == "out" and created["author"] == "agent"
    assert created["agent_id"] == agent.pk
    assert created["status"] == "queued" and created["body"] == "On its way"

    message_deliver(message_id=reply.pk)
    sent = last("message.status_changed").payload["data"]["message"]
    assert sent["id"] == reply.pk and sent["status"] == "sent" and sent["external_id"] == "remote-1"

    assert message_status_update(channel=channel, external_id="remote-1", status="delivered")
    delivered = last("message.status_changed")
    assert delivered.payload["data"]["message"]["status"] == "delivered"
    assert delivered.payload["data"]["message"]["delivered_at"]
    assert delivered.ordering_key == f"case:{case.pk}"
    # A callback that moves nothing announces nothing.
    assert not message_status_update(channel=channel, external_id="remote-1", status="sent")
    assert events(event="message.status_changed") == ["message.status_changed"] * 2


def test_notes_and_system_events_are_not_announced(subscribe, channel):
    subscribe(events=["message.created"])
    case = receive_inbound(channel=channel, sender=ANA, external_id="in-1", text="hi").message.case
    add_note(case=case, author_user=UserFactory(), body="internal: VIP")
    assign_case(case=case, assignee=UserFactory(), by=None)  # writes a system message
    assert events() == ["message.created"]


def test_case_assigned_resolved_reopened(subscribe, channel):
    subscribe(events=["case.assigned", "case.resolved", "case.reopened"])
    agent = UserFactory()
    case = receive_inbound(channel=channel, sender=ANA, external_id="in-1", text="hi").message.case
    assign_case(case=case, assignee=agent, by=agent)
    set_case_status(case=case, status=CaseStatus.PENDING, by=agent)  # not an event
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)
    set_case_status(case=case, status=CaseStatus.OPEN, by=agent)
    assert events() == ["case.assigned", "case.resolved", "case.reopened"]
    assert last("case.assigned").payload["data"]["case"]["assignee_id"] == agent.pk
    resolved = last("case.resolved").payload["data"]["case"]
    assert resolved["status"] == "resolved" and resolved["resolved_at"]
    reopened = last("case.reopened").payload["data"]["case"]
    assert reopened["reopen_count"] == 1 and reopened["resolved_at"] is None
    # A customer's message after resolution reopens by the inbound path too.
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)
    receive_inbound(channel=channel, sender=ANA, external_id="in-2", text="still broken")
    assert events()[-1] == "case.reopened"
    assert {d.ordering_key for d in WebhookDelivery.objects.all()} == {f"case:{case.pk}"}


def test_customer_merged(subscribe, channel):
    survivor = receive_inbound(
        channel=channel, sender=ANA, external_id="a", text="hi"
    ).message.thread.customer
    other = receive_inbound(
        channel=channel, sender=Sender("phone", "+14155550123"), external_id="b", text="hi"
    ).message.thread.customer
    subscribe(events=["customer.merged"])
    other_id = other.pk
    set_case_status(case=other.thread.cases.get(), status=CaseStatus.RESOLVED)
    merge_customers(survivor=survivor, merged=other)
    merged = last("customer.merged")
    assert merged.ordering_key == f"customer:{survivor.pk}"
    data = merged.payload["data"]
    assert data["customer"]["id"] == survivor.pk and data["merged_customer_id"] == other_id
    assert data["moved"]["identities"] == 1 and data["moved"]["cases"] == 1


def test_survey_answered(subscribe, channel):
    subscribe(events=["survey.answered"])
    message = receive_inbound(channel=channel, sender=ANA, external_id="a", text="hi").message
    now = timezone.now()
    request = SurveyRequest.objects.create(
        kind="csat",
        case_id=message.case_id,
        customer_id=message.thread.customer_id,
        channel=channel,
        status=SurveyRequest.Status.SENT,
        created_at=now,
        send_after=now,
        sent_at=now,
    )
    answer = survey_answer_record(request=request, score=5, via="link")
    delivery = last("survey.answered")
    assert delivery.ordering_key == f"case:{message.case_id}"
    data = delivery.payload["data"]["survey"]
    assert data["id"] == answer.pk and data["score"] == 5 and data["kind"] == "csat" and data["via"] == "link"


def test_rolled_back_work_leaves_no_delivery(subscribe, channel):
    subscribe()
    with pytest.raises(RuntimeError), transaction.atomic():
        receive_inbound(channel=channel, sender=ANA, external_id="in-1", text="hi")
        raise RuntimeError("the caller's transaction fails after the write")
    assert WebhookDelivery.objects.count() == 0
    # A provider's retry of a message we have rolls its own writes back: no event either.
    receive_inbound(channel=channel, sender=ANA, external_id="in-1", text="hi")
    count = WebhookDelivery.objects.count()
    receive_inbound(channel=channel, sender=ANA, external_id="in-1", text="hi")
    assert WebhookDelivery.objects.count() == count


def test_only_subscriptions_that_want_the_event_get_it(subscribe, channel):
    cases = subscribe(events=["case.opened"])
    messages = subscribe(events=["message.created"])
    off = subscribe(events=["message.created"], is_active=False)
    receive_inbound(channel=channel, sender=ANA, external_id="in-1", text="hi")
    assert events(subscription=cases) == ["case.opened"]
    assert events(subscription=messages) == ["message.created"]
    assert events(subscription=off) == []


def test_a_new_subscription_is_seen_at_once(channel, subscribe):
    receive_inbound(channel=channel, sender=ANA, external_id="in-1", text="hi")  # caches "nobody"
    subscribe(events=["message.created"])
    receive_inbound(channel=channel, sender=ANA, external_id="in-2", text="hi")
    assert events() == ["message.created"]


def _inbound_queries(channel, external_id, sender=ANA) -> int:
    with CaptureQueriesContext(connection) as queries:
        receive_inbound(channel=channel, sender=sender, external_id=external_id, text="hello")
    return len(queries)


def test_no_subscriptions_cost_no_query_on_the_inbound_path(channel):
    ChannelFactory()  # warm the content types etc. nothing webhook-related
    receive_inbound(channel=channel, sender=Sender("email", "warm@example.com"), external_id="w", text="x")
    selectors.subscriptions_recording()  # the per-process cache is warm, as under any load
    signals.domain_event.disconnect(dispatch_uid="integrations.domain_event")
    try:
        without = [
            _inbound_queries(channel, "a-1", Sender("email", "new1@example.com")),  # new customer and case
            _inbound_queries(channel, "a-2", Sender("email", "new1@example.com")),  # continues the case
        ]
    finally:
        receivers.connect()
    with_app = [
        _inbound_queries(channel, "b-1", Sender("email", "new2@example.com")),
        _inbound_queries(channel, "b-2", Sender("email", "new2@example.com")),
    ]
    assert with_app == without
    assert WebhookDelivery.objects.count() == 0


def test_a_subscription_costs_one_insert_per_event(channel, subscribe):
    receive_inbound(channel=channel, sender=Sender("email", "warm@example.com"), external_id="w", text="x")
    before = _inbound_queries(channel, "a-2", Sender("email", "warm@example.com"))
    subscribe(events=["message.created"])
    subscribe(events=["message.created", "case.opened"])
    selectors.subscriptions_recording()
    assert _inbound_queries(channel, "a-3", Sender("email", "warm@example.com")) == before + 1
    assert WebhookDelivery.objects.filter(event="message.created").count() == 2


def test_a_call_logged_by_an_agent_is_a_message(subscribe, channel):
    from conversations.calls import call_log

    case = receive_inbound(channel=channel, sender=ANA, external_id="in-1", text="hi").message.case
    subscribe(events=["message.created"])
    agent = UserFactory()
    call = call_log(
        by=agent, direction="outbound", number="+14155550123", talk_seconds=60, note="Called back", case=case
    )
    data = last("message.created").payload["data"]["message"]
    assert data["id"] == call.pk and data["kind"] == "call" and data["body"] == "Called back"
    assert data["address"] == {"kind": "phone", "address": "+14155550123"} and data["channel_kind"] is None
