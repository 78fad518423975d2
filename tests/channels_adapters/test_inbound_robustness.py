"""Nothing accepted is lost, nothing is half-written.

What providers really send (NUL bytes, names and ids longer than our columns,
timestamps out of range, one bad message in a batch) lands or is reported on
its own, and only failures that may pass are retried.
"""

import json

import httpx
import pytest
import redis
from django.db import DataError, IntegrityError, InterfaceError, OperationalError

from channels_adapters.base import (
    ParseError,
    error_is_transient,
    external_id_max,
    hmac_sha256_hex,
)
from channels_adapters.models import InboundEvent
from channels_adapters.services import inbound_event_process, inbound_event_reprocess
from conversations.models import Message
from customers.models import Customer, Identity
from tests.channels_adapters.meta_support import (
    facebook_channel,
    meta_headers,
    whatsapp_channel,
)
from tests.channels_adapters.twilio_support import twilio_channel, twilio_post
from tests.factories import ChannelFactory
from tests.webhooks import check_webhook

pytestmark = pytest.mark.django_db


def api_post(client, channel, payload) -> InboundEvent:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"X-Signature": "sha256=" + hmac_sha256_hex(channel.credentials["secret"], body)}
    _, [event] = check_webhook(client, channel, body, headers=headers)
    return event


def orphans() -> int:
    """Customers with nothing on their thread: what a half-written message leaves."""
    return Customer.objects.filter(thread__messages__isnull=True).count()


# Normalized at the boundary -------------------------------------------------------


def test_nul_bytes_in_text_and_name_are_dropped_and_the_message_lands(client):
    channel = ChannelFactory()
    event = api_post(
        client,
        channel,
        {
            "external_id": "nul\u00001",
            "from": {"phone": "+14155550101", "name": "Ana\u0000 Ruiz"},
            "text": "hi\u0000 there",
        },
    )
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    message = Message.objects.get()
    assert message.body == "hi there" and message.external_id == "nul1"
    assert message.thread.customer.name == "Ana Ruiz"


def test_nul_in_attachments_lands(client):
    # The jsonb columns refuse NUL as well, in keys and values.
    channel = ChannelFactory()
    attachment = {"url": "https://files.example.com/a\u0000.pdf", "name": "a\u0000.pdf"}
    event = api_post(
        client, channel, {"external_id": "att1", "from": {"id": "u9"}, "attachments": [attachment]}
    )
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    [stored] = Message.objects.get().attachments
    assert stored["url"] == "https://files.example.com/a.pdf" and stored["name"] == "a.pdf"


def test_sms_with_nul_in_body_and_profile_name_lands(client):
    channel = twilio_channel("sms")
    params = {
        "MessageSid": "SM0000000000000000000000000000nul1",
        "From": "+14155550102",
        "To": "+14155550100",
        "Body": "where is\x00 my order",
        "NumMedia": "0",
        "ProfileName": "Bo\x00b",
    }
    _, [event] = twilio_post(client, channel, params)
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    message = Message.objects.get()
    assert message.body == "where is my order"


def test_lone_surrogate_and_nan_are_stored_as_text(client):
    channel = ChannelFactory()
    body = b'{"external_id": "s1", "from": {"id": "u1"}, "text": "broken \\ud800 pair"}'
    event = api_post(client, channel, body)
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    assert Message.objects.get().body == "broken \ufffd pair"


def test_a_name_longer_than_the_column_is_cut_and_kept_whole_in_meta(client):
    channel = ChannelFactory()
    name = "Maria " + "de la Luz " * 40
    event = api_post(
        client, channel, {"external_id": "n1", "from": {"id": "u2", "name": name}, "text": "hola"}
    )
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    message = Message.objects.get()
    customer = message.thread.customer
    assert len(customer.name) == 200 and customer.name.startswith("Maria de la Luz")
    assert message.meta["sender_name_full"] == name


def test_an_external_id_longer_than_the_column_is_hashed_stably(client):
    channel = ChannelFactory()
    long_id = "x" * 600
    payload = {"external_id": long_id, "from": {"id": "u3"}, "text": "long id"}
    first = api_post(client, channel, payload)
    again = api_post(client, channel, payload)  # the provider's retry
    assert first.status == InboundEvent.Status.PROCESSED, first.error
    message = Message.objects.get()
    assert message.external_id.startswith("sha256:") and len(message.external_id) <= external_id_max()
    assert message.meta["external_id_full"] == long_id
    assert again.summary["duplicates"] == 1 and Message.objects.count() == 1


def test_an_opaque_address_longer_than_the_column_is_hashed(client):
    channel = ChannelFactory()
    event = api_post(client, channel, {"external_id": "a1", "from": {"id": "u" * 400}, "text": "hi"})
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    identity = Identity.objects.get()
    assert identity.address.startswith("sha256:")
    assert Message.objects.get().meta["sender_address_full"] == f"{channel.key}:{'u' * 400}"


def test_an_email_address_longer_than_the_column_fails_permanently_with_its_reason(client):
    channel = ChannelFactory()
    address = "a" * 330 + "@example.com"
    event = api_post(client, channel, {"external_id": "e1", "from": {"email": address}, "text": "hi"})
    assert event.status == InboundEvent.Status.FAILED and event.retryable is False
    assert "e1: A 342-character email address is not anyone's address." in event.error
    assert Customer.objects.count() == 0


def test_nul_in_an_ignored_event_name_does_not_stop_the_outcome_being_recorded(client):
    channel = ChannelFactory()
    event = api_post(client, channel, {"type": "weird\u0000kind"})
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.summary["ignored"] == ["weirdkind"]


# Permanent or transient ------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
        redis.exceptions.ConnectionError("Connection refused"),
        httpx.ConnectTimeout("timed out"),
        ConnectionResetError(),
        TimeoutError(),
    ],
)
def test_outages_are_transient(exc):
    assert error_is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        DataError("value too long"),
        IntegrityError("duplicate key"),
        ParseError("not JSON"),
        ValueError("cannot convert float NaN to integer"),
        OverflowError("timestamp out of range"),
        OSError(75, "Value too large for defined data type"),
        RecursionError(),
        TypeError("'int' object is not subscriptable"),
    ],
)
def test_bad_data_and_bugs_are_permanent(exc):
    assert not error_is_transient(exc)


@pytest.mark.parametrize("timestamp", ["1e300", "NaN", "-1e20"])
def test_a_timestamp_out_of_range_fails_its_message_at_once_and_the_batch_lands(client, timestamp):
    channel = ChannelFactory()
    body = (
        '{"messages": ['
        '{"external_id": "ok-1", "from": {"id": "u4"}, "text": "fine"},'
        f'{{"external_id": "bad-1", "from": {{"id": "u5"}}, "text": "when?", "timestamp": {timestamp}}},'
        '{"external_id": "ok-2", "from": {"id": "u6"}, "text": "fine too"}'
        "]}"
    ).encode()
    event = api_post(client, channel, body)
    assert sorted(Message.objects.values_list("external_id", flat=True)) == ["ok-1", "ok-2"]
    assert event.status == InboundEvent.Status.FAILED and event.retryable is False
    [failed] = event.summary["failed"]
    assert failed["item"] == "messages[1]" and failed["reason"]
    assert event.summary["messages"] == 2
    assert "messages[1]" in event.error


def test_deep_nesting_is_permanent(client):
    channel = ChannelFactory()
    event = api_post(client, channel, b"[" * 100_000 + b"]" * 100_000)
    assert event.status == InboundEvent.Status.FAILED and event.retryable is False
    assert "RecursionError" in event.error


def test_wrong_types_in_a_telegram_message_fail_it_permanently_by_name(client):
    channel = ChannelFactory(kind="telegram", credentials={"bot_token": "1:abc", "secret_token": "tg-secret"})
    update = {
        "update_id": 1,
        "message": {
            "message_id": 7,
            "from": {"id": 42, "first_name": "Ana"},
            "chat": {"id": 42, "type": "private"},
            "date": 1700000000,
            "photo": ["not", "a", "photo size"],
        },
    }
    _, [event] = check_webhook(
        client, channel, update, headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret"}
    )
    assert event.status == InboundEvent.Status.FAILED and event.retryable is False
    assert event.summary["failed"][0]["item"] == "message[0] 7"
    assert orphans() == 0


def test_an_outage_is_re_driven_and_bad_data_is_not(client, monkeypatch):
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from channels_adapters import services
    from conversations import services as conversation_services

    channel = ChannelFactory()
    real = conversation_services.receive_inbound

    def database_away_for_one(**fields):
        if fields["external_id"] == "down-1":
            raise OperationalError("server closed the connection unexpectedly")
        return real(**fields)

    monkeypatch.setattr(conversation_services, "receive_inbound", database_away_for_one)
    outage = api_post(
        client,
        channel,
        {
            "messages": [
                {"external_id": "down-1", "from": {"id": "u7"}, "text": "lands on the retry"},
                {"external_id": "ok-3", "from": {"id": "u8"}, "text": "lands now"},
            ]
        },
    )
    bad = api_post(client, channel, {"external_id": "bad-phone", "from": {"phone": "12"}, "text": "x"})
    assert outage.status == InboundEvent.Status.FAILED and outage.retryable is True
    assert outage.summary["failed"] == [
        {"item": "down-1", "reason": "OperationalError: server closed the connection unexpectedly"}
    ]
    assert bad.status == InboundEvent.Status.FAILED and bad.retryable is False

    monkeypatch.undo()
    InboundEvent.objects.update(received_at=timezone.now() - timedelta(minutes=10))
    try:
        assert services.inbound_events_redrive() == 1  # the outage only
    finally:
        redis.Redis.from_url(settings.REDIS_URL).delete(services.PENDING_KEY)
    again = inbound_event_process(event_id=outage.pk)
    assert again.status == InboundEvent.Status.PROCESSED and again.summary["duplicates"] == 1
    assert set(Message.objects.values_list("external_id", flat=True)) == {"down-1", "ok-3"}


# One bad message in a batch --------------------------------------------------------


def test_one_bad_messenger_event_does_not_lose_the_rest_of_the_batch(client):
    channel = facebook_channel()
    page = channel.credentials["page_id"]
    good = {
        "sender": {"id": "PSID-1"},
        "recipient": {"id": page},
        "timestamp": 1700000000000,
        "message": {"mid": "m_good", "text": "hello"},
    }
    bad = {"sender": {"id": "PSID-2"}, "recipient": {"id": page}, "timestamp": 1700000001000, "message": {}}
    body = json.dumps(
        {"object": "page", "entry": [{"id": page, "time": 1, "messaging": [bad, good]}, "not an entry"]}
    ).encode()
    _, [event] = check_webhook(client, channel, body, headers=meta_headers(body))
    assert list(Message.objects.values_list("external_id", flat=True)) == ["m_good"]
    assert event.status == InboundEvent.Status.FAILED and event.retryable is False
    assert [f["item"] for f in event.summary["failed"]] == ["entry[0].messaging[0]", "entry[1]"]
    assert "message.mid" in event.error and "Each entry must be an object" in event.error
    # Still visible and reprocessable: another try lands nothing twice.
    assert inbound_event_reprocess(events=InboundEvent.objects.filter(pk=event.pk)) == 1
    again = inbound_event_process(event_id=event.pk)
    assert again.status == InboundEvent.Status.FAILED and again.summary["duplicates"] == 1
    assert Message.objects.count() == 1


def test_one_bad_whatsapp_message_does_not_lose_the_other_message_or_status(client, graph):
    channel = whatsapp_channel()
    number_id = channel.credentials["phone_number_id"]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": number_id},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "14155550103"}],
        "messages": [
            {
                "from": "14155550103",
                "id": "wamid.bad",
                "timestamp": "yesterday",
                "type": "text",
                "text": {"body": "x"},
            },
            {
                "from": "14155550103",
                "id": "wamid.good",
                "timestamp": "1700000000",
                "type": "text",
                "text": {"body": "hi"},
            },
        ],
        "statuses": [{"id": "wamid.unknown", "status": "delivered", "timestamp": "1700000001"}],
    }
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}],
        }
    ).encode()
    _, [event] = check_webhook(client, channel, body, headers=meta_headers(body))
    assert list(Message.objects.values_list("external_id", flat=True)) == ["wamid.good"]
    assert event.summary["statuses"] == 1 and event.summary["messages"] == 1
    [failed] = event.summary["failed"]
    assert failed["item"] == "entry[0].changes[0].messages[0] wamid.bad"
    assert "not a timestamp" in failed["reason"]
    assert event.retryable is False


# Never a 5xx for a signed body ---------------------------------------------------


def test_a_voice_webhook_with_invalid_utf8_is_answered_and_kept(client):
    channel = twilio_channel("voice")
    params = {"CallSid": "CA0000000000000000000000000000bad8", "From": "+14155550104", "To": "+14155550100"}
    from urllib.parse import urlencode

    from channels_adapters.twilio.common import public_base_url
    from tests.channels_adapters.twilio_support import sign

    body = urlencode(params).encode() + b"&CallerName=\xff\xfe"
    # What Django reads (and so what the signature covers) for bytes that are not UTF-8.
    seen = {**params, "CallerName": "\xff\xfe"}
    url = public_base_url() + channel.webhook_path
    response, [event] = check_webhook(
        client,
        channel,
        body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign(url, seen)},
    )
    assert response.status_code == 200 and b"<Response>" in response.content
    assert bytes(event.body) == body
    assert event.status == InboundEvent.Status.FAILED and event.retryable is False
    assert "not UTF-8" in event.error
