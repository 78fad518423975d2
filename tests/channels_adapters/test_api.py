import pytest

from channels_adapters.base import hmac_sha256_hex
from channels_adapters.models import InboundEvent
from conversations.models import Direction, Message
from customers.models import Identity
from tests.factories import ChannelFactory, MessageFactory
from tests.webhooks import check_webhook, fixture_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel():
    return ChannelFactory(credentials={"secret": "api-secret", "callback_url": "http://x"})


def signed(channel, body: bytes) -> dict:
    return {"X-Signature": "sha256=" + hmac_sha256_hex(channel.credentials["secret"], body)}


def deliver(client, channel, name, **kwargs):
    body = fixture_bytes("api", name)
    return check_webhook(client, channel, body, headers=signed(channel, body), **kwargs)


def test_message_lands_on_the_customers_thread(client, channel):
    response, [event] = deliver(client, channel, "message.json")
    assert response.json()["ok"] is True
    assert event.status == InboundEvent.Status.PROCESSED and event.summary["messages"] == 1
    message = Message.objects.get()
    assert message.body.startswith("Hello, my order #4411")
    assert message.direction == Direction.IN and message.channel == channel
    assert message.identity.address == "ana.silva@example.com"
    assert message.thread.customer.name == "Ana Silva"
    assert message.provider_timestamp.isoformat() == "2026-11-20T09:15:00+00:00"


def test_duplicate_webhook_is_one_message(client, channel):
    deliver(client, channel, "message.json")
    _, [again] = deliver(client, channel, "message.json")
    assert Message.objects.count() == 1
    assert InboundEvent.objects.count() == 2
    assert again.summary["duplicates"] == 1


def test_forged_signature_is_refused_and_nothing_is_stored(client, channel):
    body = fixture_bytes("api", "message.json")
    forged = {"X-Signature": "sha256=" + hmac_sha256_hex("not-the-secret", body)}
    check_webhook(client, channel, body, headers=forged, expect_status=403)
    check_webhook(client, channel, body, headers={}, expect_status=403)
    # Signed over other bytes: a re-serialized body does not pass.
    tampered = body.replace(b"4411", b"4412")
    check_webhook(client, channel, tampered, headers=signed(channel, body), expect_status=403)
    assert InboundEvent.objects.count() == 0 and Message.objects.count() == 0


def test_unknown_channel_key_is_404(client):
    response = client.post("/hooks/no-such-key/", data=b"{}", content_type="application/json")
    assert response.status_code == 404


def test_signed_unparseable_body_is_kept_failed_and_reprocessable(client, channel):
    response, [event] = deliver(client, channel, "truncated.json")
    assert response.status_code == 200  # the sender must not retry forever
    assert event.status == InboundEvent.Status.FAILED
    assert "not JSON" in event.error and event.retryable is False
    assert event.body_bytes == fixture_bytes("api", "truncated.json")
    assert Message.objects.count() == 0


def test_batch_is_processed_in_provider_time_order(client, channel):
    _, [event] = deliver(client, channel, "batch.json")
    assert event.summary["messages"] == 3
    bodies = list(Message.objects.order_by("pk").values_list("external_id", flat=True))
    assert bodies == ["crm-msg-2001", "crm-msg-2002", "crm-msg-2003"]
    phone = Identity.objects.get(kind="phone")
    assert phone.address == "+14155550199"
    assert Message.objects.filter(identity=phone).count() == 2
    media = Message.objects.get(external_id="crm-msg-2003")
    assert media.kind == "media" and media.attachments[0]["name"] == "receipt.pdf"
    assert media.identity.address == f"{channel.key}:user-77"


def test_status_callback_only_moves_forward(client, channel):
    out = MessageFactory(
        channel=channel, direction=Direction.OUT, author="agent", external_id="crm-out-1", status="sent"
    )
    deliver(client, channel, "status_delivered.json")
    out.refresh_from_db()
    assert out.status == "delivered" and out.delivered_at is not None
    # A late "sent" arriving after "delivered" does not downgrade it.
    deliver(client, channel, "status_sent_late.json")
    out.refresh_from_db()
    assert out.status == "delivered"


def test_unknown_event_is_ignored_on_purpose(client, channel):
    _, [event] = deliver(client, channel, "unknown_event.json")
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.summary["ignored"] == ["typing"]
    assert Message.objects.count() == 0


def test_bad_item_in_a_batch_does_not_block_the_others(client, channel):
    body = (
        b'{"messages": [{"external_id": "ok-1", "from": {"email": "a@example.com"}, "text": "fine"},'
        b' {"external_id": "bad-1", "from": {"phone": "12"}, "text": "bad number"}]}'
    )
    _, [event] = check_webhook(client, channel, body, headers=signed(channel, body))
    assert event.status == InboundEvent.Status.FAILED and "bad-1" in event.error
    assert list(Message.objects.values_list("external_id", flat=True)) == ["ok-1"]


def test_get_on_a_channel_without_handshake_is_405(client, channel):
    assert client.get(channel.webhook_path).status_code == 405


@pytest.mark.django_db
def test_a_deactivated_channel_stops_answering_at_once(client):
    channel = ChannelFactory(credentials={"secret": "s3cret", "callback_url": "http://127.0.0.1:9/"})
    body = b'{"external_id": "c-1", "from": {"email": "ana@example.com"}, "text": "hi"}'
    headers = {"X-Signature": "sha256=" + hmac_sha256_hex("s3cret", body)}
    assert client.post(channel.webhook_path, body, "application/json", headers=headers).status_code == 200
    channel.is_active = False
    channel.save()  # the admin's save clears the lookup cache of this process
    assert client.post(channel.webhook_path, body, "application/json", headers=headers).status_code == 404
