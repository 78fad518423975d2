"""Facebook Messenger through the real webhook URL with Meta's signatures, and
replies through the Graph API played by a local server."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from channels_adapters.meta.selectors import window_state
from channels_adapters.models import Channel, InboundEvent
from conversations.delivery import message_deliver
from conversations.models import Author, CaseStatus, DeliveryStatus, Direction, Message
from conversations.services import send_automatic, send_reply
from customers.models import Identity
from tests.channels_adapters.meta_support import (
    VERIFY_TOKEN,
    customer_wrote,
    deliver_meta,
    facebook_channel,
    graph_error,
    meta_headers,
)
from tests.conftest import wait_for
from tests.factories import MessageFactory, UserFactory
from tests.provider_server import Reply
from tests.webhooks import check_webhook, fixture_bytes, fixture_json

pytestmark = pytest.mark.django_db

PSID = "6543210987654321"
FIRST_MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"


@pytest.fixture
def channel():
    return facebook_channel()


def _out(channel, identity, external_id, *, minutes_ago=0, status=DeliveryStatus.SENT):
    inbound = Message.objects.filter(identity=identity).first()
    return MessageFactory(
        case=inbound.case,
        thread=inbound.thread,
        channel=channel,
        identity=identity,
        direction=Direction.OUT,
        author=Author.AGENT,
        external_id=external_id,
        status=status,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


# Webhook verification ------------------------------------------------------


def test_handshake_answers_the_challenge_only_with_our_verify_token(client, channel):
    url = channel.webhook_path
    ok = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    )
    assert ok.status_code == 200 and ok.content == b"1158201444"
    wrong = client.get(url, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert wrong.status_code == 403 and wrong.content != b"1"
    not_subscribe = client.get(
        url, {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}
    )
    assert not_subscribe.status_code == 403
    assert client.get(url).status_code == 403


def test_bad_signature_is_refused_and_nothing_is_stored(client, channel):
    body = fixture_bytes("facebook", "text.json")
    check_webhook(client, channel, body, headers=meta_headers(body, "another-app-secret"), expect_status=403)
    check_webhook(client, channel, body, headers={}, expect_status=403)
    check_webhook(client, channel, body, headers={"X-Hub-Signature-256": "sha1=abc"}, expect_status=403)
    tampered = body.replace(b"4411", b"4412")
    check_webhook(client, channel, tampered, headers=meta_headers(body), expect_status=403)
    assert InboundEvent.objects.count() == 0 and Message.objects.count() == 0


def test_signed_malformed_body_is_kept_failed_and_not_retried(client, channel):
    body = b'{"object": "page", "entry": [{"id": "1", "messaging": [{"message": {"te'
    response, [event] = check_webhook(client, channel, body, headers=meta_headers(body))
    assert response.status_code == 200
    assert event.status == InboundEvent.Status.FAILED and "not JSON" in event.error
    assert event.retryable is False and Message.objects.count() == 0
    # A WhatsApp payload posted to a Messenger channel is read as a mistake, not ignored.
    other = fixture_bytes("whatsapp", "text.json")
    _, [event] = check_webhook(client, channel, other, headers=meta_headers(other))
    assert event.status == InboundEvent.Status.FAILED and "page" in event.error


# Inbound -----------------------------------------------------------------


def test_text_message_lands_on_the_customers_thread(client, channel):
    _, [event] = deliver_meta(client, channel, "text.json")
    assert event.status == InboundEvent.Status.PROCESSED and event.summary["messages"] == 1
    message = Message.objects.get()
    # Signed over Meta's \u-escaped bytes, read back as the real characters.
    assert message.body == "Olá! My order #4411 hasn't arrived 😟"
    assert message.external_id == FIRST_MID and message.direction == Direction.IN
    assert (message.identity.kind, message.identity.address) == ("facebook", PSID)
    assert message.provider_timestamp.isoformat() == "2025-11-20T09:15:00+00:00"
    assert message.case.status == CaseStatus.OPEN and message.case.origin_channel == channel


def test_duplicate_post_is_one_message(client, channel):
    deliver_meta(client, channel, "text.json")
    _, [again] = deliver_meta(client, channel, "text.json")
    assert Message.objects.count() == 1 and again.summary["duplicates"] == 1


def test_several_entries_in_one_post_land_in_provider_time_order(client, channel):
    _, [event] = deliver_meta(client, channel, "batch.json")
    assert event.summary["messages"] == 3
    assert list(Message.objects.order_by("pk").values_list("external_id", flat=True)) == [
        "m_batch_1",
        "m_batch_2",
        "m_batch_3",
    ]
    assert Identity.objects.filter(kind="facebook").count() == 2
    first, third = Message.objects.get(external_id="m_batch_1"), Message.objects.get(external_id="m_batch_3")
    assert first.thread_id == third.thread_id and first.case_id == third.case_id


def test_attachments_stickers_locations_and_buttons_are_rendered(client, channel):
    deliver_meta(client, channel, "text.json")
    ours = _out(channel, Identity.objects.get(), "m_our_answer")
    _, [event] = deliver_meta(client, channel, "kinds.json")
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    media = Message.objects.get(external_id="m_media_1")
    assert media.kind == "media" and media.body == ""
    assert [(a["type"], a["content_type"], a["name"]) for a in media.attachments] == [
        ("image", "image/jpeg", "photo_of_box.jpg"),
        ("file", "application/pdf", "receipt.pdf"),
    ]
    assert media.attachments[0]["url"].startswith("https://scontent.xx.fbcdn.net/")
    assert Message.objects.get(external_id="m_sticker_1").body == "👍"
    location = Message.objects.get(external_id="m_location_1")
    assert "40.4168, -3.7038" in location.body and location.meta["location"]["longitude"] == -3.7038
    quick = Message.objects.get(external_id="m_quick_1")
    assert quick.body == "Track my order" and quick.meta["quick_reply_payload"] == "TRACK_ORDER"
    assert Message.objects.get(external_id="m_reply_1").meta["reply_to"] == "m_our_question"
    postback = Message.objects.get(external_id="m_postback_1")
    assert postback.body == "Talk to a person" and postback.meta["postback_payload"] == "HUMAN"
    # A reaction is news about the message reacted to, not a new message.
    ours.refresh_from_db()
    assert ours.meta["reaction"]["emoji"] == "❤️" and ours.meta["reaction"]["by"] == "customer"
    assert not Message.objects.filter(external_id__startswith="m_our_answer-").exists()


def test_echo_is_recorded_as_ours_and_our_own_send_is_not_repeated(client, channel):
    deliver_meta(client, channel, "text.json")
    case = Message.objects.get().case
    assert case.waiting_since is not None
    _, [event] = deliver_meta(client, channel, "echo.json")
    # The echo of our own API send (metadata "helpdesk:99") is read as its "sent" receipt only.
    assert event.summary["ignored"] == [] and event.summary["statuses"] == 1
    echo = Message.objects.get(external_id="m_echo_inbox_1")
    assert echo.direction == Direction.OUT and echo.author == Author.AGENT and echo.meta["echo"] is True
    assert echo.identity.address == PSID and echo.thread == case.thread
    assert not Message.objects.filter(external_id="m_echo_api_1").exists()
    case.refresh_from_db()
    assert case.waiting_since is None  # the page answered, from Meta's own inbox
    assert Message.objects.filter(direction=Direction.IN).count() == 1


def test_delivery_and_read_watermarks_tick_our_messages(client, channel):
    deliver_meta(client, channel, "text.json")
    identity = Identity.objects.get()
    # Watermarks are Meta's clock (2025-11-20 09:16:15 / 09:16:25); ours predate them.
    before = _out(channel, identity, "m_out_1", minutes_ago=60 * 24 * 400)
    after = _out(channel, identity, "m_out_2")
    deliver_meta(client, channel, "delivery.json")
    before.refresh_from_db()
    after.refresh_from_db()
    assert before.status == DeliveryStatus.DELIVERED and after.status == DeliveryStatus.SENT
    deliver_meta(client, channel, "read.json")
    before.refresh_from_db()
    assert before.status == DeliveryStatus.READ and before.read_at is not None


def test_customer_edit_keeps_the_previous_text(client, channel):
    deliver_meta(client, channel, "text.json")
    deliver_meta(client, channel, "edit.json")
    message = Message.objects.get()
    assert message.body == "My order #4412 hasn't arrived"
    assert message.meta["edits"][0]["text"].startswith("Olá! My order #4411")


def test_unsupported_events_are_stored_and_ignored(client, channel):
    _, [event] = deliver_meta(client, channel, "unknown_event.json")
    assert event.status == InboundEvent.Status.PROCESSED
    assert sorted(event.summary["ignored"]) == ["optin", "referral", "standby"]
    assert Message.objects.count() == 0


# Outbound ----------------------------------------------------------------


def test_reply_goes_through_the_send_api(graph, channel):
    inbound = customer_wrote(channel, "facebook", PSID, hours_ago=2)
    graph.script(Reply(200, {"recipient_id": PSID, "message_id": "m_sent_1"}))
    reply = send_reply(case=inbound.case, author_user=UserFactory(), body="Your parcel left today.")
    assert message_deliver(message_id=reply.pk).outcome == "sent"
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT and reply.external_id == "m_sent_1"
    [request] = graph.requests
    assert (request.method, request.path) == ("POST", "/v23.0/me/messages")
    assert request.headers["authorization"] == "Bearer EAAG-page-token"
    assert "access_token" not in request.query  # never in a URL that ends up in logs
    assert request.json() == {
        "recipient": {"id": PSID},
        "message": {"text": "Your parcel left today.", "metadata": f"helpdesk:{reply.pk}"},
        "messaging_type": "RESPONSE",
    }


def test_a_single_attachment_is_sent_as_a_native_attachment(graph, channel, settings):
    settings.PUBLIC_BASE_URL = "https://help.acme.example"
    inbound = customer_wrote(channel, "facebook", PSID, hours_ago=1)
    graph.script(Reply(200, {"recipient_id": PSID, "message_id": "m_sent_2"}))
    reply = send_reply(
        case=inbound.case,
        author_user=UserFactory(),
        body="",
        attachments=[
            {"url": "/media/attachments/label.png", "content_type": "image/png", "name": "label.png"}
        ],
    )
    message_deliver(message_id=reply.pk)
    assert graph.requests[0].json()["message"]["attachment"] == {
        "type": "image",
        "payload": {"url": "https://help.acme.example/media/attachments/label.png", "is_reusable": False},
    }


def test_after_24_hours_an_agent_replies_with_the_human_agent_tag(graph, channel):
    inbound = customer_wrote(channel, "facebook", PSID, hours_ago=30)
    graph.script(Reply(200, {"recipient_id": PSID, "message_id": "m_sent_3"}))
    reply = send_reply(case=inbound.case, author_user=UserFactory(), body="Sorry for the wait.")
    message_deliver(message_id=reply.pk)
    body = graph.requests[0].json()
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"
    # An automatic message may not use the human agent tag.
    bot = send_automatic(case=inbound.case, body="How did we do? Reply 1-5.")
    message_deliver(message_id=bot.pk)
    bot.refresh_from_db()
    assert bot.status == DeliveryStatus.FAILED and "only a person may answer now" in bot.error
    assert len(graph.requests) == 1


def test_window_closed_after_seven_days_refuses_before_queueing(graph, channel):
    inbound = customer_wrote(channel, "facebook", PSID, hours_ago=24 * 8)
    with pytest.raises(ValidationError, match="more than 7 days ago"):
        send_reply(case=inbound.case, author_user=UserFactory(), body="Still there?")
    assert not Message.objects.filter(direction=Direction.OUT).exists() and graph.requests == []


def test_window_state_for_the_inbox(channel, django_assert_max_num_queries):
    inbound = customer_wrote(channel, "facebook", PSID, hours_ago=3)
    with django_assert_max_num_queries(1):
        state = window_state(channel=channel, thread=inbound.thread)
    assert state["open"] is True and state["rule"] == "standard"
    assert state["closes_at"] == inbound.provider_timestamp + timedelta(hours=24)
    later = window_state(channel=channel, thread=inbound.thread, now=timezone.now() + timedelta(days=2))
    assert later["open"] is True and later["rule"] == "human_agent"
    closed = window_state(channel=channel, thread=inbound.thread, now=timezone.now() + timedelta(days=8))
    assert closed["open"] is False and closed["rule"] == "closed" and "7 days" in closed["reason"]


@pytest.mark.parametrize(
    ("reply", "outcome", "words"),
    [
        (
            Reply(400, graph_error(190, "Error validating access token: Session has expired")),
            "failed",
            "expired",
        ),
        (
            Reply(400, graph_error(551, "This person isn't available right now.")),
            "failed",
            "cannot be reached",
        ),
        (
            Reply(400, graph_error(10, "Outside of allowed window", subcode=2018278)),
            "failed",
            "outside the window Messenger allows",
        ),
        (Reply(400, graph_error(200, "Permissions error")), "failed", "lacks the permission"),
        (
            Reply(
                400,
                graph_error(
                    100, "(#100) Param recipient[id] must be a valid ID", kind="GraphMethodException"
                ),
            ),
            "failed",
            "Param recipient[id]",
        ),
        (
            Reply(400, graph_error(613, "Calls to this api have exceeded the rate limit.")),
            "retry",
            "rate-limiting",
        ),
        (
            Reply(503, graph_error(2, "Service temporarily unavailable", kind="OAuthException")),
            "retry",
            "temporary",
        ),
        (Reply(502, b"<html>Bad gateway</html>"), "retry", "HTTP 502"),
    ],
)
def test_graph_errors_become_plain_words_or_retries(graph, channel, reply, outcome, words):
    inbound = customer_wrote(channel, "facebook", PSID, hours_ago=1)
    graph.script(reply)
    message = send_reply(case=inbound.case, author_user=UserFactory(), body="Hello")
    assert message_deliver(message_id=message.pk).outcome == outcome
    message.refresh_from_db()
    assert words in message.error
    assert message.status == (DeliveryStatus.FAILED if outcome == "failed" else DeliveryStatus.QUEUED)


# Admin set-up ------------------------------------------------------------

ADMIN_CREDENTIALS = {
    "facebook": {"page_id": "1", "page_access_token": "t", "app_secret": "s", "verify_token": "vt-admin"},
    "instagram": {"ig_account_id": "1", "access_token": "t", "app_secret": "s", "verify_token": "vt-admin"},
    "whatsapp": {"phone_number_id": "1", "access_token": "t", "app_secret": "s", "verify_token": "vt-admin"},
    "twitter": {
        "consumer_key": "k",
        "consumer_secret": "cs-admin",
        "access_token": "t",
        "access_token_secret": "ts",
        "user_id": "1",
    },
}


@pytest.mark.parametrize("kind", ["facebook", "instagram", "whatsapp", "twitter"])
def test_admin_creates_the_channel_and_its_webhook_url_answers_the_provider(client, django_user_model, kind):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456"))
    add = client.get(f"/admin/channels_adapters/channel/add/?kind={kind}").content.decode()
    # The form has a field for each credential this kind needs.
    assert all(f'name="credential_{key}"' in add for key in ADMIN_CREDENTIALS[kind])
    incomplete = {**ADMIN_CREDENTIALS[kind], "app_secret" if kind != "twitter" else "consumer_secret": ""}
    form = {"kind": kind, "name": f"Acme {kind}", "is_active": "on", "monthly_cost": "0", "settings": "{}"}
    response = client.post(
        "/admin/channels_adapters/channel/add/",
        {**form, **{f"credential_{key}": value for key, value in incomplete.items()}},
    )
    assert response.status_code == 200 and "An active channel needs" in response.content.decode()
    response = client.post(
        "/admin/channels_adapters/channel/add/",
        {**form, **{f"credential_{key}": value for key, value in ADMIN_CREDENTIALS[kind].items()}},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get(kind=kind)
    page = client.get(f"/admin/channels_adapters/channel/{channel.pk}/change/").content.decode()
    assert channel.webhook_url in page
    if kind == "twitter":
        answer = client.get(channel.webhook_path, {"crc_token": "abc"})
        assert answer.json()["response_token"].startswith("sha256=")
    else:
        answer = client.get(
            channel.webhook_path,
            {"hub.mode": "subscribe", "hub.verify_token": "vt-admin", "hub.challenge": "c"},
        )
        assert answer.content == b"c"


def test_admin_action_subscribes_the_page_to_the_app(graph, client, django_user_model, channel):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456"))
    graph.script(Reply(200, {"success": True}))
    changelist = "/admin/channels_adapters/channel/"
    response = client.post(
        changelist, {"action": "register_webhook", "_selected_action": [channel.pk]}, follow=True
    )
    assert "Page 112233445566778 now sends messages, message_echoes" in response.content.decode()
    [request] = graph.requests
    assert (request.method, request.path) == ("POST", "/v23.0/112233445566778/subscribed_apps")
    assert request.query["subscribed_fields"].split(",")[:3] == [
        "messages",
        "message_echoes",
        "message_deliveries",
    ]
    assert request.headers["authorization"] == "Bearer EAAG-page-token"
    # An expired token is explained, not a crash.
    graph.script(Reply(400, graph_error(190, "Error validating access token")))
    response = client.post(
        changelist, {"action": "register_webhook", "_selected_action": [channel.pk]}, follow=True
    )
    assert "access token has expired or was revoked" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_conversation_flows_both_ways_with_delivery_ticks_through_the_worker(live_worker, client, graph):
    """The whole loop on the real broker: customer writes, agent answers, Meta ticks it."""
    channel = facebook_channel()
    now_ms = int(timezone.now().timestamp() * 1000)
    inbound = fixture_json("facebook", "text.json")
    inbound["entry"][0]["messaging"][0]["timestamp"] = now_ms
    body = json.dumps(inbound).encode()
    assert (
        client.post(
            channel.webhook_path, body, content_type="application/json", headers=meta_headers(body)
        ).status_code
        == 200
    )
    customer_message = wait_for(lambda: Message.objects.filter(external_id=FIRST_MID).first())

    graph.script(Reply(200, {"recipient_id": PSID, "message_id": "m_live_reply"}))
    reply = send_reply(case=customer_message.case, author_user=UserFactory(), body="On its way!")
    wait_for(lambda: Message.objects.filter(pk=reply.pk, status=DeliveryStatus.SENT).exists())
    assert graph.requests[0].json()["messaging_type"] == "RESPONSE"

    for receipt, status in (("delivery", DeliveryStatus.DELIVERED), ("read", DeliveryStatus.READ)):
        ticks = fixture_json("facebook", f"{receipt}.json")
        event = ticks["entry"][0]["messaging"][0]
        event[receipt]["watermark"] = int(timezone.now().timestamp() * 1000) + 1000
        body = json.dumps(ticks).encode()
        client.post(channel.webhook_path, body, content_type="application/json", headers=meta_headers(body))
        wait_for(lambda status=status: Message.objects.filter(pk=reply.pk, status=status).exists())


def test_survey_scores_are_sent_as_quick_replies(graph, channel):
    inbound = customer_wrote(channel, "facebook", PSID, hours_ago=1)
    graph.script(Reply(200, {"recipient_id": PSID, "message_id": "m_sent_qr"}))
    reply = send_reply(
        case=inbound.case,
        author_user=UserFactory(),
        body="How did we do? Reply 1-5",
        meta={"quick_replies": ["1", "2", "3", "4", "5"]},
    )
    assert message_deliver(message_id=reply.pk).outcome == "sent"
    sent = graph.requests[0].json()["message"]
    assert [q["title"] for q in sent["quick_replies"]] == ["1", "2", "3", "4", "5"]
    assert sent["quick_replies"][3] == {"content_type": "text", "title": "4", "payload": "4"}


def test_the_echo_of_our_send_settles_one_whose_answer_a_crash_lost(client, channel):
    deliver_meta(client, channel, "text.json")
    inbound = Message.objects.get()
    ours = Message.objects.create(
        thread=inbound.thread,
        case=inbound.case,
        channel=channel,
        identity=inbound.identity,
        direction=Direction.OUT,
        author=Author.AGENT,
        body="On its way",
        status=DeliveryStatus.UNKNOWN,
        created_at=inbound.created_at,
    )
    body = fixture_bytes("facebook", "echo.json").replace(b'"helpdesk:99"', f'"helpdesk:{ours.pk}"'.encode())

    check_webhook(client, channel, body, headers=meta_headers(body))

    ours.refresh_from_db()
    assert ours.status == DeliveryStatus.SENT and ours.external_id == "m_echo_api_1"
    assert not Message.objects.filter(external_id="m_echo_api_1").exclude(pk=ours.pk).exists()
