"""SMS through Twilio: signed webhooks in, the real `twilio` client out (against a local Twilio)."""

import pytest
from django.conf import settings as django_settings

from channels_adapters.base import Sender
from channels_adapters.models import InboundEvent
from channels_adapters.registry import adapter_for
from conversations import delivery, services
from conversations.models import DeliveryAttempt, Direction, Message
from customers.models import Identity
from tests.channels_adapters.twilio_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OUR_NUMBER,
    form_of,
    incoming_numbers_page,
    message_resource,
    messages_path,
    sign,
    twilio_channel,
    twilio_error,
    twilio_post,
)
from tests.conftest import wait_for
from tests.factories import MessageFactory, UserFactory
from tests.provider_server import Reply
from tests.webhooks import fixture_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel():
    return twilio_channel("sms")


def test_inbound_sms_lands_on_the_numbers_thread(client, channel):
    response, [event] = twilio_post(client, channel, "inbound.json")
    assert response["Content-Type"].startswith("text/xml")
    assert b"<Response" in response.content  # empty TwiML: no automatic reply
    assert event.status == InboundEvent.Status.PROCESSED and event.summary["messages"] == 1
    message = Message.objects.get()
    assert message.external_id == "SM1f0c6d1e2a3b4c5d6e7f8091a2b3c4d5"
    assert message.body.startswith("Hi, I called yesterday about order #4411")
    assert message.direction == Direction.IN and message.kind == "text" and message.channel == channel
    assert (message.identity.kind, message.identity.address) == ("phone", "+14155550199")
    assert message.meta["to"] == OUR_NUMBER
    assert message.case.status == "open"


def test_mms_keeps_every_media_with_its_type(client, channel):
    twilio_post(client, channel, "inbound_mms.json")
    message = Message.objects.get()
    assert message.kind == "media" and message.body == ""
    assert [a["content_type"] for a in message.attachments] == ["image/jpeg", "application/pdf"]
    assert message.attachments[0]["url"].endswith("/Media/ME0a1b2c3d4e5f60718293a4b5c6d7e8f9")


def test_duplicate_message_sid_is_one_message(client, channel):
    twilio_post(client, channel, "inbound.json")
    _, [again] = twilio_post(client, channel, "inbound.json")
    assert Message.objects.count() == 1
    assert InboundEvent.objects.count() == 2 and again.summary["duplicates"] == 1


def test_forged_or_missing_signature_is_refused_and_nothing_is_stored(client, channel):
    twilio_post(client, channel, "inbound.json", token="not-the-auth-token", expect_status=403)
    twilio_post(client, channel, "inbound.json", signature="", expect_status=403)
    # A signature for other parameters (a changed Body) does not pass.
    url = django_settings.PUBLIC_BASE_URL + channel.webhook_path
    stolen = sign(url, {"Body": "something else", "From": "+14155550199"})
    twilio_post(client, channel, "inbound.json", signature=stolen, expect_status=403)
    # Nor does a signature for another URL (the query string is signed too).
    signed_plain = sign(url, {"MessageSid": "SMx", "From": "+14155550199", "Body": "hi"})
    twilio_post(
        client,
        channel,
        {"MessageSid": "SMx", "From": "+14155550199", "Body": "hi"},
        query={"event": "status"},
        signature=signed_plain,
        expect_status=403,
    )
    assert InboundEvent.objects.count() == 0 and Message.objects.count() == 0


def test_signature_is_checked_on_the_public_url_behind_a_proxy(client, channel, settings):
    # Twilio called https://help.example.com/...; Django sees http://testserver/...
    settings.PUBLIC_BASE_URL = "https://help.example.com"
    twilio_post(client, channel, "inbound.json", url_base="https://help.example.com")
    # A deployment that left the base URL alone: the proxy's X-Forwarded-Proto tells the scheme.
    settings.PUBLIC_BASE_URL = "http://localhost:8000"
    twilio_post(
        client,
        channel,
        "inbound_mms.json",
        url_base="https://testserver",
        headers={"X-Forwarded-Proto": "https"},
    )
    assert Message.objects.count() == 2


def test_signed_but_unreadable_form_is_kept_failed(client, channel):
    response, [event] = twilio_post(client, channel, {"AccountSid": ACCOUNT_SID, "Body": "no sid, no sender"})
    assert response.status_code == 200
    assert event.status == InboundEvent.Status.FAILED and "MessageSid" in event.error
    assert event.retryable is False and Message.objects.count() == 0


def _reply(channel, body="Your refund left our bank today.", **kwargs):
    inbound = services.receive_inbound(
        channel=channel, sender=Sender("phone", "+14155550199"), external_id="SMin1", text="Refund?"
    )
    return services.send_reply(case=inbound.message.case, author_user=UserFactory(), body=body, **kwargs)


def test_a_send_keeps_its_query_budget_and_reuses_the_connection(
    twilio, channel, django_assert_max_num_queries
):
    """bench/outbound.py: a send was 16-17 queries and a new HTTP client each time.

    Now: the claim with its attempt (one statement), the message read, then in one
    transaction the thread and case locks, the message with its attempt (one
    statement); Twilio's session is the thread's, so a second send reuses its connection."""
    from channels_adapters.http import twilio_http

    twilio.script(
        *(Reply(201, message_resource(sid, to="+14155550199", from_=OUR_NUMBER)) for sid in ("SMb1", "SMb2")),
        path=messages_path(),
    )
    first, second = _reply(channel, body="One"), _reply(channel, body="Two")
    with django_assert_max_num_queries(8):
        assert delivery.message_deliver(message_id=first.pk).outcome == "sent"
    session = twilio_http(10.0).session
    with django_assert_max_num_queries(8):
        assert delivery.message_deliver(message_id=second.pk).outcome == "sent"
    assert twilio_http(10.0).session is session
    assert list(DeliveryAttempt.objects.filter(message=second).values_list("number", "outcome")) == [
        (1, "sent")
    ]


def test_a_reply_queued_keeps_its_query_budget(channel, django_assert_max_num_queries, monkeypatch):
    """bench/outbound.py: the reply channel and the recipient come from one read of the
    customer's latest messages; then the thread lock, the message, the case, the thread."""
    from conversations import tasks

    monkeypatch.setattr(tasks.message_deliver, "delay", lambda *a, **k: None)
    first = _reply(channel, body="One")
    with django_assert_max_num_queries(7):
        second = services.send_reply(case=first.case, author_user=first.author_user, body="Two")
    assert (second.channel_id, second.identity_id) == (first.channel_id, first.identity_id)


def test_outbound_sms_goes_through_the_real_client_with_a_status_callback(twilio, channel, settings):
    settings.PUBLIC_BASE_URL = "https://help.example.com"
    twilio.script(
        Reply(
            201,
            message_resource(
                "SMout00000000000000000000000000001", to="+14155550199", from_=OUR_NUMBER, body="Your refund"
            ),
        ),
        path=messages_path(),
    )
    reply = _reply(channel)
    assert delivery.message_deliver(message_id=reply.pk).outcome == "sent"
    reply.refresh_from_db()
    assert reply.status == "sent" and reply.external_id == "SMout00000000000000000000000000001"

    [request] = twilio.requests
    assert request.method == "POST" and request.path == messages_path()
    assert request.headers["authorization"].startswith("Basic ")
    sent = form_of(request)
    assert sent["To"] == "+14155550199" and sent["From"] == OUR_NUMBER
    assert sent["Body"] == "Your refund left our bank today."
    # Our id rides in the signed callback URL: a callback settles a send a crash cut short.
    assert (
        sent["StatusCallback"]
        == f"https://help.example.com{channel.webhook_path}?event=status&message={reply.pk}"
    )


def test_outbound_media_urls_are_public(twilio, channel, settings):
    settings.PUBLIC_BASE_URL = "https://help.example.com"
    twilio.script(Reply(201, message_resource("SMout2", to="+14155550199", from_=OUR_NUMBER)))
    reply = _reply(
        channel,
        body="Here is the label",
        attachments=[
            {"url": "/media/attachments/label.pdf", "content_type": "application/pdf", "name": "l.pdf"}
        ],
    )
    delivery.message_deliver(message_id=reply.pk)
    assert form_of(twilio.requests[0])["MediaUrl"] == "https://help.example.com/media/attachments/label.pdf"


@pytest.mark.parametrize(
    ("code", "twilio_words", "plain"),
    [
        (21211, "The 'To' number +1415555 is not a valid phone number.", "phone number is not valid"),
        (21610, "Attempt to send to unsubscribed recipient", "unsubscribed (replied STOP)"),
        (20003, "Authenticate", "rejected the channel's credentials"),
    ],
)
def test_twilio_error_reaches_the_agent_in_plain_words(twilio, channel, code, twilio_words, plain):
    twilio.script(twilio_error(code, twilio_words, status=401 if code == 20003 else 400))
    reply = _reply(channel)
    assert delivery.message_deliver(message_id=reply.pk).outcome == "failed"
    reply.refresh_from_db()
    assert reply.status == "failed"
    assert plain in reply.error and f"Twilio error {code}" in reply.error
    assert twilio_words in reply.error  # Twilio's own words stay for whoever debugs it
    assert len(twilio.requests) == 1  # not retried


def test_twilio_outage_is_retried_not_failed(twilio, channel):
    twilio.script(Reply(503, {"code": 20500, "message": "Internal Server Error", "status": 503}))
    reply = _reply(channel)
    outcome = delivery.message_deliver(message_id=reply.pk)
    assert outcome.outcome == "retry" and outcome.retry_in > 0
    reply.refresh_from_db()
    assert reply.status == "queued" and "HTTP 503" in reply.error
    assert DeliveryAttempt.objects.get(message=reply).outcome == "retry"


def test_unreachable_twilio_is_retried(channel, settings):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    reply = _reply(channel)
    assert delivery.message_deliver(message_id=reply.pk).outcome == "retry"
    reply.refresh_from_db()
    assert "Could not reach Twilio" in reply.error


def _sent(channel, sid="SMaaaa0000bbbb1111cccc2222dddd3333"):
    return MessageFactory(
        channel=channel,
        case__origin_channel=channel,
        direction=Direction.OUT,
        author="agent",
        external_id=sid,
        status="sent",
    )


def test_status_callbacks_move_the_message_forward(client, channel):
    out = _sent(channel)
    twilio_post(client, channel, "status_delivered.json", query={"event": "status"})
    out.refresh_from_db()
    assert out.status == "delivered" and out.delivered_at is not None
    # A late "sent" does not take it back; Twilio's own "sending" step is ignored on purpose.
    twilio_post(client, channel, "status_sent.json", query={"event": "status"})
    _, [event] = twilio_post(client, channel, "status_sending.json", query={"event": "status"})
    out.refresh_from_db()
    assert out.status == "delivered"
    assert event.summary["ignored"] == ["status:sending"]


def test_undelivered_status_fails_the_message_in_plain_words(client, channel):
    out = _sent(channel)
    twilio_post(client, channel, "status_undelivered.json", query={"event": "status"})
    out.refresh_from_db()
    assert out.status == "failed"
    assert "landline" in out.error and "30006" in out.error


def test_sms_credentials_match_the_design_table(channel):
    assert adapter_for("sms").credential_keys == ("account_sid", "auth_token", "phone_number")
    assert channel.credentials["auth_token"] == AUTH_TOKEN
    assert Identity.objects.count() == 0


def test_register_webhook_sets_the_numbers_sms_url(twilio, channel):
    twilio.script(incoming_numbers_page(OUR_NUMBER), Reply(200, {"sid": "PN" + "0" * 31 + "1"}))
    adapter_for("sms").register_webhook(channel)
    assert twilio.requests[-1].form() == {
        "SmsUrl": django_settings.PUBLIC_BASE_URL + channel.webhook_path,
        "SmsMethod": "POST",
    }


def test_whatsapp_sender_webhook_is_set_in_the_console():
    channel = twilio_channel("whatsapp_twilio")
    with pytest.raises(NotImplementedError, match="Senders"):
        adapter_for("whatsapp_twilio").register_webhook(channel)


def test_sms_round_trip_through_the_worker(live_worker, client, provider, settings):
    # Webhook -> Redis -> worker -> thread; reply -> worker -> Twilio; status callback -> delivered.
    settings.TWILIO_API_BASE_URL = provider.url
    channel = twilio_channel("sms")
    provider.script(Reply(201, message_resource("SMround1", to="+14155550199", from_=OUR_NUMBER)))
    twilio_post(client, channel, "inbound.json", process=False)
    inbound = wait_for(
        lambda: Message.objects.filter(external_id="SM1f0c6d1e2a3b4c5d6e7f8091a2b3c4d5").first()
    )

    reply = services.send_reply(case=inbound.case, author_user=UserFactory(), body="On its way!")
    wait_for(lambda: Message.objects.filter(pk=reply.pk, status="sent").exists())
    assert form_of(provider.requests[0])["Body"] == "On its way!"

    delivered = {
        **fixture_json("sms", "status_delivered.json"),
        "MessageSid": "SMround1",
        "SmsSid": "SMround1",
    }
    twilio_post(client, channel, delivered, query={"event": "status"}, process=False)
    wait_for(lambda: Message.objects.filter(pk=reply.pk, status="delivered").exists())
