"""WhatsApp through Twilio: the same phone identity as SMS, WhatsApp's 24-hour rule, templates."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from channels_adapters.base import Sender
from channels_adapters.models import InboundEvent
from conversations import delivery, services
from conversations.models import Direction, Message
from customers.models import Customer, Identity
from tests.channels_adapters.twilio_support import (
    OUR_NUMBER,
    form_of,
    message_resource,
    twilio_channel,
    twilio_error,
    twilio_post,
)
from tests.factories import MessageFactory, UserFactory
from tests.provider_server import Reply
from tests.webhooks import fixture_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel():
    return twilio_channel("whatsapp_twilio")


def test_inbound_whatsapp_is_the_bare_phone_identity(client, channel):
    _, [event] = twilio_post(client, channel, "inbound.json")
    assert event.status == InboundEvent.Status.PROCESSED
    message = Message.objects.get()
    assert message.body == "Hola! Is my refund for #4411 on its way?"
    assert (message.identity.kind, message.identity.address) == ("phone", "+14155550199")
    assert message.thread.customer.name == "Ana Silva"  # WhatsApp's ProfileName


def test_whatsapp_and_sms_from_one_number_are_one_customer(client, channel):
    sms = twilio_channel("sms")
    twilio_post(client, channel, "inbound.json")
    twilio_post(client, sms, "inbound.json")
    assert Customer.objects.count() == 1 and Identity.objects.count() == 1
    assert {m.channel.kind for m in Message.objects.select_related("channel")} == {"sms", "whatsapp_twilio"}
    assert Message.objects.values("case").distinct().count() == 1


def test_shared_location_is_kept(client, channel):
    twilio_post(client, channel, "inbound_location.json")
    message = Message.objects.get()
    assert message.meta["location"]["latitude"] == "40.4168"
    assert message.meta["location"]["label"] == "Our shop"
    assert message.body == "Location: 40.4168, -3.7038"


def test_forged_signature_is_refused(client, channel):
    twilio_post(client, channel, "inbound.json", token="wrong", expect_status=403)
    assert InboundEvent.objects.count() == 0 and Message.objects.count() == 0


def _case(channel):
    return services.receive_inbound(
        channel=channel, sender=Sender("phone", "whatsapp:+14155550199"), external_id="SMwa-in", text="Hola"
    ).message.case


def test_outbound_whatsapp_uses_the_prefixed_addresses(twilio, channel):
    twilio.script(
        Reply(201, message_resource("SMwa-out", to="whatsapp:+14155550199", from_="whatsapp:" + OUR_NUMBER))
    )
    reply = services.send_reply(case=_case(channel), author_user=UserFactory(), body="Yes, it left today.")
    assert delivery.message_deliver(message_id=reply.pk).outcome == "sent"
    sent = form_of(twilio.requests[0])
    assert sent["To"] == "whatsapp:+14155550199" and sent["From"] == "whatsapp:" + OUR_NUMBER
    assert sent["Body"] == "Yes, it left today."
    assert Message.objects.get(pk=reply.pk).external_id == "SMwa-out"


def test_free_form_reply_after_24_hours_is_refused_before_queueing(channel):
    case = _case(channel)
    with (
        time_machine.travel(timezone.now() + timedelta(hours=25)),
        pytest.raises(ValidationError, match="24 hours"),
    ):
        services.send_reply(case=case, author_user=UserFactory(), body="Still there?")
    assert not Message.objects.filter(direction=Direction.OUT).exists()


def test_template_can_be_sent_after_24_hours(twilio, channel):
    twilio.script(Reply(201, message_resource("SMwa-tpl", to="whatsapp:+14155550199", from_=OUR_NUMBER)))
    case = _case(channel)
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        reply = services.send_reply(
            case=case,
            author_user=UserFactory(),
            body="",
            meta={
                "template": {"content_sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e", "variables": {"1": "Ana"}}
            },
        )
        assert delivery.message_deliver(message_id=reply.pk).outcome == "sent"
    sent = form_of(twilio.requests[0])
    assert sent["ContentSid"] == "HXb5b62575e6e4ff6129ad7c8efe1f983e"
    assert sent["ContentVariables"] == '{"1": "Ana"}'
    assert "Body" not in sent


def test_window_error_from_twilio_reads_plainly(twilio, channel):
    twilio.script(
        twilio_error(63016, "Failed to send freeform message because you are outside the allowed window.")
    )
    reply = services.send_reply(case=_case(channel), author_user=UserFactory(), body="Hello")
    delivery.message_deliver(message_id=reply.pk)
    reply.refresh_from_db()
    assert reply.status == "failed" and "only an approved template can be sent now" in reply.error


def test_read_and_failed_statuses(client, channel):
    read = MessageFactory(
        channel=channel,
        case__origin_channel=channel,
        direction=Direction.OUT,
        author="agent",
        external_id="SMbbbb1111cccc2222dddd3333eeee4444",
        status="sent",
    )
    twilio_post(client, channel, "status_read.json", query={"event": "status"})
    read.refresh_from_db()
    assert read.status == "read" and read.read_at is not None

    read.status, read.read_at = "sent", None
    read.save()
    twilio_post(client, channel, "status_failed.json", query={"event": "status"})
    read.refresh_from_db()
    assert read.status == "failed"
    assert "approved template" in read.error and "63016" in read.error


def test_message_with_nothing_to_show_is_ignored_on_purpose(client, channel):
    params = {**fixture_json("whatsapp_twilio", "inbound.json"), "Body": "", "MessageType": "reaction"}
    _, [event] = twilio_post(client, channel, params)
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.summary["ignored"] == ["empty-message:reaction"] and Message.objects.count() == 0
