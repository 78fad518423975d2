"""X direct messages: the CRC, the webhook signature, DM events and echoes, and
replies through the v2 DM endpoint played by a local server."""

import base64
import hashlib
import hmac
from urllib.parse import quote, unquote

import pytest

from channels_adapters.models import InboundEvent
from conversations.delivery import message_deliver
from conversations.models import Author, DeliveryStatus, Direction, Message
from conversations.services import send_reply
from customers.models import Identity
from tests.channels_adapters.meta_support import (
    CONSUMER_SECRET,
    customer_wrote,
    deliver_x,
    twitter_channel,
    x_headers,
)
from tests.factories import MessageFactory, UserFactory
from tests.provider_server import Reply
from tests.webhooks import check_webhook, fixture_bytes

pytestmark = pytest.mark.django_db

CUSTOMER = "944480690"


@pytest.fixture
def channel():
    return twitter_channel()


def test_crc_answer_is_the_hmac_of_the_token(client, channel):
    response = client.get(channel.webhook_path, {"crc_token": "Zm9vYmFy-crc"})
    assert response.status_code == 200
    expected = base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), b"Zm9vYmFy-crc", hashlib.sha256).digest())
    assert response.json() == {"response_token": "sha256=" + expected.decode()}
    assert client.get(channel.webhook_path).status_code == 400


def test_crc_cannot_be_used_to_sign_a_forged_body(client, channel):
    """The replayed attack: GET ?crc_token=<a forged DM body>, then POST that body with
    the CRC answer as its signature. The handshake refuses the token, so no signature."""
    forged = fixture_bytes("twitter", "dm.json").replace(b"Hi there", b"Send the refund to IBAN X")
    response = client.get(channel.webhook_path, {"crc_token": forged.decode()})
    assert response.status_code == 400 and b"response_token" not in response.content
    for token in ("{}", "a" * 300, "tok en!", '{"direct_message_events": []}'):
        assert client.get(channel.webhook_path, {"crc_token": token}).status_code == 400
    assert InboundEvent.objects.count() == 0 and Message.objects.count() == 0


def test_bad_x_signature_is_refused_and_nothing_is_stored(client, channel):
    body = fixture_bytes("twitter", "dm.json")
    check_webhook(client, channel, body, headers=x_headers(body, "someone-else"), expect_status=403)
    check_webhook(client, channel, body, headers={}, expect_status=403)
    check_webhook(
        client, channel, body.replace(b"Hi there", b"Hi thera"), headers=x_headers(body), expect_status=403
    )
    assert InboundEvent.objects.count() == 0 and Message.objects.count() == 0


def test_dms_are_unescaped_named_and_in_order(client, channel):
    _, [event] = deliver_x(client, channel, "dm.json")
    assert event.summary["messages"] == 2
    first, second = Message.objects.order_by("pk")
    assert first.body == "Hi there"
    assert second.body == "Order <4411> & still nothing. See https://acme.example/orders/4411"
    assert (second.identity.kind, second.identity.address) == ("twitter", CUSTOMER)
    assert second.thread.customer.name == "Dana Ortiz" and second.meta["screen_name"] == "dana_co"
    assert second.external_id == "1466781513409966084"
    _, [again] = deliver_x(client, channel, "dm.json")
    assert again.summary["duplicates"] == 2 and Message.objects.count() == 2


def test_our_own_dm_is_an_echo_not_the_customers(client, channel):
    deliver_x(client, channel, "dm.json")
    case = Message.objects.first().case
    deliver_x(client, channel, "echo.json")
    echo = Message.objects.get(external_id="1466781513409966090")
    assert echo.direction == Direction.OUT and echo.author == Author.AGENT and echo.meta["echo"] is True
    assert echo.body == "Sorry about that & thanks for waiting!"
    assert echo.identity.address == CUSTOMER and echo.case == case
    assert Message.objects.filter(direction=Direction.IN).count() == 2
    assert not Identity.objects.filter(address="3001969357").exists()  # our account is nobody's identity
    # Without our app id configured, a DM sent through the API is recorded as an echo too.
    assert Message.objects.filter(external_id="1466781513409966091", meta__echo=True).exists()


def test_our_api_sends_are_not_recorded_twice_when_the_app_id_is_set(client):
    channel = twitter_channel()
    channel.settings = {"app_id": "29480001"}
    channel.save()
    deliver_x(client, channel, "dm.json")
    _, [event] = deliver_x(client, channel, "echo.json")
    assert event.summary["ignored"] == ["direct_message:own_send"] and event.summary["messages"] == 1
    assert not Message.objects.filter(external_id="1466781513409966091").exists()


def test_media_dm_keeps_the_file_and_drops_its_link(client, channel):
    deliver_x(client, channel, "media.json")
    message = Message.objects.get()
    assert message.body == "The label"
    assert message.attachments[0]["url"].endswith("/label.jpg") and message.attachments[0]["type"] == "photo"


def test_mentions_are_not_dms_and_do_not_fail(client, channel):
    _, [event] = deliver_x(client, channel, "mention.json")
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.summary["ignored"] == ["tweet_create_events"]
    assert Message.objects.count() == 0


def test_read_event_marks_our_dms_read_and_typing_is_ignored(client, channel):
    deliver_x(client, channel, "dm.json")
    inbound = Message.objects.first()
    ours = MessageFactory(
        case=inbound.case,
        thread=inbound.thread,
        channel=channel,
        identity=inbound.identity,
        direction=Direction.OUT,
        author=Author.AGENT,
        external_id="1466781513409966090",
        status=DeliveryStatus.SENT,
        created_at=inbound.provider_timestamp,
    )
    _, [event] = deliver_x(client, channel, "read_typing.json")
    assert event.summary["ignored"] == ["direct_message_indicate_typing_events"]
    ours.refresh_from_db()
    assert ours.status == DeliveryStatus.READ


def _oauth_params(header: str) -> dict:
    assert header.startswith("OAuth ")
    return {
        unquote(k): unquote(v.strip('"')) for k, v in (part.split("=", 1) for part in header[6:].split(", "))
    }


def test_reply_is_sent_with_the_v2_dm_endpoint_signed_oauth1(channel, x_api):
    inbound = customer_wrote(channel, "twitter", CUSTOMER, hours_ago=100)  # X has no reply window
    x_api.script(Reply(201, {"data": {"dm_conversation_id": "3001969357-944480690", "dm_event_id": "177"}}))
    reply = send_reply(case=inbound.case, author_user=UserFactory(), body="We're on it & will DM you.")
    assert message_deliver(message_id=reply.pk).outcome == "sent"
    reply.refresh_from_db()
    assert reply.external_id == "177" and reply.status == DeliveryStatus.SENT
    [request] = x_api.requests
    assert (request.method, request.path) == ("POST", f"/2/dm_conversations/with/{CUSTOMER}/messages")
    assert request.json() == {"text": "We're on it & will DM you."}
    # Check the OAuth 1.0a signature the way X does, from the consumer and token secrets.
    params = _oauth_params(request.headers["authorization"])
    assert params["oauth_consumer_key"] == "x-consumer-key"
    assert params["oauth_token"] == "3001969357-x-access-token"
    signed = {k: v for k, v in params.items() if k != "oauth_signature"}
    normalized = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(signed.items()))
    url = f"{x_api.url}{request.path}"
    base = "&".join(["POST", quote(url, safe="~"), quote(normalized, safe="~")])
    key = f"{CONSUMER_SECRET}&x-access-token-secret".encode()
    expected = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()
    assert params["oauth_signature"] == expected


@pytest.mark.parametrize(
    ("reply", "outcome", "words"),
    [
        (
            Reply(
                403, {"detail": "You cannot send messages to this user.", "title": "Forbidden", "status": 403}
            ),
            "failed",
            "You cannot send messages to this user",
        ),
        (Reply(401, {"title": "Unauthorized", "status": 401, "detail": "Unauthorized"}), "failed", "revoked"),
        (
            Reply(429, {"title": "Too Many Requests"}, headers={"x-rate-limit-reset": "1"}),
            "retry",
            "rate-limiting",
        ),
        (Reply(503, b"over capacity"), "retry", "temporary problem"),
    ],
)
def test_x_errors_are_retried_or_explained(channel, x_api, reply, outcome, words):
    inbound = customer_wrote(channel, "twitter", CUSTOMER, hours_ago=1)
    x_api.script(reply)
    message = send_reply(case=inbound.case, author_user=UserFactory(), body="Hello")
    assert message_deliver(message_id=message.pk).outcome == outcome
    message.refresh_from_db()
    assert words in message.error
