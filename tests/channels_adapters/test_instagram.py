"""Instagram direct messages: the Messenger shape with IGSIDs, messaging_seen
read receipts, no delivery receipts, a 1,000-byte text limit."""

import pytest
from django.core.exceptions import ValidationError

from channels_adapters.models import InboundEvent
from conversations.delivery import message_deliver
from conversations.models import Author, DeliveryStatus, Direction, Message
from conversations.services import send_reply
from tests.channels_adapters.meta_support import (
    VERIFY_TOKEN,
    customer_wrote,
    deliver_meta,
    graph_error,
    instagram_channel,
    meta_headers,
)
from tests.factories import MessageFactory, UserFactory
from tests.provider_server import Reply
from tests.webhooks import check_webhook, fixture_bytes

pytestmark = pytest.mark.django_db

IGSID = "1234567890123456"


@pytest.fixture
def channel():
    return instagram_channel()


def test_handshake_and_signatures(client, channel):
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "ig-challenge"}
    assert client.get(channel.webhook_path, query).content == b"ig-challenge"
    assert client.get(channel.webhook_path, {**query, "hub.verify_token": "nope"}).status_code == 403
    body = fixture_bytes("instagram", "text.json")
    check_webhook(client, channel, body, headers=meta_headers(body, "wrong"), expect_status=403)
    assert InboundEvent.objects.count() == 0


def test_instagram_login_app_secret_is_also_accepted(client):
    # With "Instagram Login", Meta signs with the Instagram app's secret.
    channel = instagram_channel(instagram_app_secret="ig-login-secret")
    body = fixture_bytes("instagram", "text.json")
    check_webhook(client, channel, body, headers=meta_headers(body, "ig-login-secret"))
    assert Message.objects.count() == 2


def test_messages_and_shared_posts_land_with_the_igsid(client, channel):
    _, [event] = deliver_meta(client, channel, "text.json")
    assert event.summary["messages"] == 2
    text, share = Message.objects.order_by("provider_timestamp")
    assert text.body == "Do you ship to Portugal?"
    assert (text.identity.kind, text.identity.address) == ("instagram", IGSID)
    assert share.kind == "media" and share.attachments[0]["type"] == "share"
    assert share.attachments[0]["url"].startswith("https://lookaside.fbsbx.com/")
    assert share.thread_id == text.thread_id


def test_echo_is_ours_not_the_customers(client, channel):
    deliver_meta(client, channel, "text.json")
    deliver_meta(client, channel, "echo.json")
    echo = Message.objects.get(body="Yes, we do!")
    assert echo.direction == Direction.OUT and echo.author == Author.AGENT and echo.meta["echo"] is True
    assert echo.identity.address == IGSID
    assert Message.objects.filter(direction=Direction.IN).count() == 2


def test_echo_of_our_own_app_is_not_recorded_twice(client, channel):
    # Instagram echoes carry no metadata: our app id tells our own sends apart.
    channel.settings = {"app_id": "1217981644879628"}
    channel.save()
    deliver_meta(client, channel, "text.json")
    _, [event] = deliver_meta(client, channel, "echo.json")
    assert event.summary["ignored"] == ["message_echo:own_send"]
    assert not Message.objects.filter(direction=Direction.OUT).exists()


def test_messaging_seen_marks_the_message_and_earlier_ones_read(client, channel):
    deliver_meta(client, channel, "text.json")
    inbound = Message.objects.first()
    seen = MessageFactory(
        case=inbound.case,
        thread=inbound.thread,
        channel=channel,
        identity=inbound.identity,
        direction=Direction.OUT,
        author=Author.AGENT,
        external_id="ig_out_1",
        status=DeliveryStatus.SENT,
    )
    _, [event] = deliver_meta(client, channel, "seen.json")
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    seen.refresh_from_db()
    assert seen.status == DeliveryStatus.READ


def test_comments_are_not_direct_messages(client, channel):
    _, [event] = deliver_meta(client, channel, "unknown_event.json")
    assert event.status == InboundEvent.Status.PROCESSED and event.summary["ignored"] == ["changes:comments"]
    assert Message.objects.count() == 0


def test_reply_goes_through_me_messages_with_the_instagram_token(channel, graph):
    inbound = customer_wrote(channel, "instagram", IGSID, hours_ago=1)
    graph.script(Reply(200, {"recipient_id": IGSID, "message_id": "ig_sent_1"}))
    reply = send_reply(case=inbound.case, author_user=UserFactory(), body="Yes, in 3-5 days.")
    assert message_deliver(message_id=reply.pk).outcome == "sent"
    [request] = graph.requests
    assert request.path == "/v23.0/me/messages" and request.headers["authorization"] == "Bearer EAAG-ig-token"
    assert request.json() == {
        "recipient": {"id": IGSID},
        "message": {"text": "Yes, in 3-5 days."},
        "messaging_type": "RESPONSE",
    }


def test_text_over_1000_bytes_is_refused_in_plain_words(channel, graph):
    inbound = customer_wrote(channel, "instagram", IGSID, hours_ago=1)
    reply = send_reply(case=inbound.case, author_user=UserFactory(), body="é" * 600)
    assert message_deliver(message_id=reply.pk).outcome == "failed"
    reply.refresh_from_db()
    assert "1,000 bytes" in reply.error and "1,200" in reply.error and graph.requests == []


def test_window_is_24_hours_without_the_human_agent_permission(channel, graph):
    inbound = customer_wrote(channel, "instagram", IGSID, hours_ago=30)
    with pytest.raises(ValidationError, match="more than 24 hours ago"):
        send_reply(case=inbound.case, author_user=UserFactory(), body="Hi again")
    # An admin who got the Human Agent permission approved switches the tag on.
    channel.settings = {"human_agent_tag": True}
    channel.save()
    graph.script(Reply(200, {"recipient_id": IGSID, "message_id": "ig_sent_2"}))
    reply = send_reply(case=inbound.case, author_user=UserFactory(), body="Hi again")
    message_deliver(message_id=reply.pk)
    assert graph.requests[0].json()["tag"] == "HUMAN_AGENT"


def test_user_unreachable_is_explained(channel, graph):
    inbound = customer_wrote(channel, "instagram", IGSID, hours_ago=1)
    graph.script(Reply(400, graph_error(551, "This person isn't available right now.")))
    reply = send_reply(case=inbound.case, author_user=UserFactory(), body="Hello")
    message_deliver(message_id=reply.pk)
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.FAILED and reply.error.startswith("This person cannot be reached")
