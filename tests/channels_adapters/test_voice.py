"""Phone calls through Twilio Voice: TwiML answers, the call on the thread, voicemail, screen pop."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree import ElementTree

import pytest
import time_machine
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from channels_adapters.base import Sender, SendError, hmac_sha256_hex
from channels_adapters.models import InboundEvent
from channels_adapters.registry import adapter_for
from conversations import services
from conversations.calls import call_log
from conversations.models import Direction, Message
from customers.models import Customer, Identity
from helpdesk.asgi import application
from kpis.selectors import kpi_report
from tests.channels_adapters.twilio_support import (
    OUR_NUMBER,
    incoming_numbers_page,
    numbers_path,
    sign,
    twilio_channel,
    twilio_post,
)
from tests.factories import ChannelFactory, CustomerFactory, IdentityFactory, UserFactory
from tests.provider_server import Reply
from tests.webhooks import check_webhook, fixture_json

CALL_SID = "CA5e4d3c2b1a09f8e7d6c5b4a392817060"
CALLER = "+14155550199"


@pytest.fixture
def channel(db):
    return twilio_channel("voice")


def twiml(response) -> ElementTree.Element:
    assert response["Content-Type"].startswith("text/xml")
    return ElementTree.fromstring(response.content)


def event_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["event"][0]


def call() -> Message:
    return Message.objects.get(external_id=CALL_SID)


@pytest.mark.django_db
def test_incoming_call_is_a_call_message_on_the_callers_thread(client, channel):
    response, [event] = twilio_post(client, channel, "incoming.json")
    assert event.status == InboundEvent.Status.PROCESSED
    message = call()
    assert message.kind == "call" and message.direction == Direction.IN
    assert (message.identity.kind, message.identity.address) == ("phone", CALLER)
    assert message.meta == {
        "call_sid": CALL_SID,
        "from": CALLER,
        "to": OUR_NUMBER,
        "direction": "inbound",
        "call_status": "ringing",
        "answered": False,
    }
    assert message.case.status == "open"


@pytest.mark.django_db
def test_without_anyone_to_forward_to_the_caller_gets_voicemail(client, channel):
    channel.settings = {"language": "es-ES", "voicemail_greeting": "Deje su mensaje tras la señal."}
    channel.save()
    response, _ = twilio_post(client, channel, "incoming.json", process=False)
    root = twiml(response)
    say, record = root.find("Say"), root.find("Record")
    assert say.text == "Deje su mensaje tras la señal." and say.get("language") == "es-ES"
    assert record.get("transcribe") == "true"
    assert event_of(record.get("transcribeCallback")) == "transcription"
    assert event_of(record.get("recordingStatusCallback")) == "recording"
    assert event_of(record.get("action")) == "recorded"
    assert record.get("maxLength") == "120"


@pytest.mark.django_db
def test_in_hours_the_call_is_forwarded_with_a_whisper(client, channel, settings):
    settings.PUBLIC_BASE_URL = "https://help.example.com"
    channel.settings = {"forward_to": ["+34911234567", "sip:desk@pbx.example.com"], "ring_seconds": 15}
    channel.save()
    response, _ = twilio_post(client, channel, "incoming.json", process=False)
    dial = twiml(response).find("Dial")
    assert dial.get("timeout") == "15" and event_of(dial.get("action")) == "dial"
    assert dial.get("action").startswith(f"https://help.example.com{channel.webhook_path}?")
    number, sip = dial.find("Number"), dial.find("Sip")
    assert number.text == "+34911234567" and sip.text == "sip:desk@pbx.example.com"
    whisper = parse_qs(urlsplit(number.get("url")).query)
    assert whisper == {"event": ["whisper"], "caller": [CALLER]}


@pytest.mark.django_db
def test_out_of_hours_goes_to_voicemail_with_the_closed_greeting(client, channel):
    channel.settings = {
        "forward_to": "+34911234567",
        "closed_greeting": "We are closed. Leave a message.",
        "open_hours": {"timezone": "Europe/Madrid", "mon": "09:00-18:00", "tue": "09:00-18:00"},
    }
    channel.save()
    # Sunday 12:00 in Madrid: closed.
    with time_machine.travel(datetime(2026, 11, 29, 11, 0, tzinfo=UTC)):
        response, _ = twilio_post(client, channel, "incoming.json", process=False)
    root = twiml(response)
    assert root.find("Dial") is None and root.find("Say").text == "We are closed. Leave a message."
    # Monday 10:00 in Madrid: forwarded.
    with time_machine.travel(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)):
        response, _ = twilio_post(client, channel, "incoming.json", process=False)
    assert twiml(response).find("Dial") is not None


@pytest.mark.django_db
def test_the_call_webhook_answers_without_heavy_work(client, channel, django_assert_max_num_queries):
    # Twilio waits 15 s at most: the TwiML comes from the request and the channel alone.
    channel.settings = {"forward_to": "+34911234567"}
    channel.save()
    params = fixture_json("voice", "incoming.json")
    url = django_settings.PUBLIC_BASE_URL + channel.webhook_path
    with django_assert_max_num_queries(2):  # find the channel, store the event
        response = client.post(
            channel.webhook_path,
            data=urlencode(params),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": sign(url, params)},
        )
    assert twiml(response).find("Dial") is not None
    assert InboundEvent.objects.filter(status="pending").count() == 1


@pytest.mark.django_db
def test_whisper_tells_the_agent_who_is_calling(client, channel):
    customer = CustomerFactory(name="Ana Silva")
    IdentityFactory(customer=customer, kind="phone", address=CALLER)
    response, [event] = twilio_post(
        client, channel, "whisper.json", query={"event": "whisper", "caller": CALLER}
    )
    assert twiml(response).find("Say").text == "Call from Ana Silva."
    assert event.summary["ignored"] == ["whisper"] and Message.objects.count() == 0


@pytest.mark.django_db
def test_call_to_voicemail_to_transcript_lands_on_the_thread(client, channel):
    channel.settings = {"forward_to": "+34911234567"}
    channel.save()
    twilio_post(client, channel, "incoming.json")
    # Nobody picked up: Twilio asks the Dial action what next, and we answer voicemail.
    response, _ = twilio_post(client, channel, "dial_no_answer.json", query={"event": "dial"})
    assert twiml(response).find("Record").get("transcribe") == "true"
    response, _ = twilio_post(client, channel, "recorded.json", query={"event": "recorded"})
    assert twiml(response).find("Hangup") is not None
    twilio_post(client, channel, "recording.json", query={"event": "recording"})
    twilio_post(client, channel, "transcription.json", query={"event": "transcription"})
    twilio_post(client, channel, "status_completed.json", query={"event": "call-status"})

    message = call()
    assert Message.objects.filter(thread=message.thread).count() == 1
    assert message.kind == "voicemail"
    assert message.meta["transcript"].startswith("Hi, this is Ana Silva, I am calling about the refund")
    assert message.meta["recording_url"].endswith("/Recordings/RE8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a")
    assert message.meta["recording_seconds"] == 17
    assert message.meta["call_status"] == "completed" and message.meta["answered"] is False
    assert message.meta["dial_status"] == "no-answer"
    # Nobody spoke with the caller: this call counts as abandoned (docs/contracts.md).
    assert "talk_seconds" not in message.meta
    today = timezone.now().date()
    totals = kpi_report(start=today, end=today + timedelta(days=1), use_rollups=False, breakdowns=False)[
        "totals"
    ]
    assert totals["abandonment_rate"] == 1.0 and totals["talk_seconds"] is None


@pytest.mark.django_db
def test_answered_call_records_talk_time(client, channel):
    twilio_post(client, channel, "incoming.json")
    response, _ = twilio_post(client, channel, "dial_completed.json", query={"event": "dial"})
    assert twiml(response).find("Hangup") is not None
    twilio_post(client, channel, "status_completed.json", query={"event": "call-status"})
    meta = call().meta
    assert meta["answered"] is True and meta["talk_seconds"] == 184
    assert meta["call_status"] == "completed" and meta["call_seconds"] == 201
    assert call().kind == "call"


@pytest.mark.django_db
@pytest.mark.parametrize("fixture", ["status_no_answer.json", "status_canceled.json"])
def test_unanswered_call_is_recorded_as_abandoned(client, channel, fixture):
    twilio_post(client, channel, "incoming.json")
    twilio_post(client, channel, fixture, query={"event": "call-status"})
    meta = call().meta
    assert meta["direction"] == "inbound" and meta["answered"] is False
    assert meta["call_status"] in ("no-answer", "canceled")  # abandoned per docs/contracts.md
    assert "talk_seconds" not in meta


@pytest.mark.django_db
def test_early_call_steps_are_ignored_and_outcomes_only_move_forward(client, channel):
    twilio_post(client, channel, "incoming.json")
    twilio_post(client, channel, "dial_completed.json", query={"event": "dial"})
    _, [event] = twilio_post(client, channel, "status_in_progress.json", query={"event": "call-status"})
    assert event.summary["ignored"] == ["call-status:in-progress"]
    twilio_post(client, channel, "status_completed.json", query={"event": "call-status"})
    # Twilio retries a callback: nothing moves back.
    twilio_post(client, channel, "incoming.json")
    meta = call().meta
    assert meta["call_status"] == "completed" and meta["answered"] is True


@pytest.mark.django_db
def test_a_callback_processed_before_the_call_still_finds_one_call(client, channel):
    # Queues do not promise order: the outcome may be processed first.
    twilio_post(client, channel, "status_no_answer.json", query={"event": "call-status"})
    twilio_post(client, channel, "incoming.json")
    assert Message.objects.count() == 1
    assert call().meta["call_status"] == "no-answer"


@pytest.mark.django_db
def test_forged_voice_webhook_is_refused_and_nothing_is_stored(client, channel):
    twilio_post(client, channel, "incoming.json", token="forged", expect_status=403)
    twilio_post(
        client,
        channel,
        "transcription.json",
        query={"event": "transcription"},
        signature="",
        expect_status=403,
    )
    assert InboundEvent.objects.count() == 0 and Message.objects.count() == 0


@pytest.mark.django_db
def test_same_number_on_api_then_sms_then_a_call_is_one_customer_one_thread(client, channel):
    api = ChannelFactory(credentials={"secret": "api-secret", "callback_url": "http://127.0.0.1:9/"})
    body = (
        b'{"external_id": "crm-1", "from": {"phone": "+1 415 555 0199", "name": "Ana Silva"}, "text": "Hi"}'
    )
    check_webhook(client, api, body, headers={"X-Signature": "sha256=" + hmac_sha256_hex("api-secret", body)})
    twilio_post(client, twilio_channel("sms"), "inbound.json")
    twilio_post(client, channel, "incoming.json")

    assert Customer.objects.count() == 1 and Identity.objects.count() == 1
    customer = Customer.objects.get()
    kinds = list(customer.thread.messages.order_by("pk").values_list("channel__kind", "kind"))
    assert kinds == [("api", "text"), ("sms", "text"), ("voice", "call")]
    assert customer.thread.cases.count() == 1


@pytest.mark.django_db
def test_phone_channel_refuses_written_replies(channel):
    case = services.receive_inbound(
        channel=channel, sender=Sender("phone", CALLER), external_id=CALL_SID, kind="call", text="Call"
    ).message.case
    with pytest.raises(ValidationError, match="phone calls, not written replies"):
        services.send_reply(case=case, author_user=UserFactory(), body="Hello")


@pytest.mark.django_db
def test_agent_logs_an_outbound_call_with_a_note(channel):
    sms = twilio_channel("sms")
    case = services.receive_inbound(
        channel=sms, sender=Sender("phone", CALLER), external_id="SMx", text="Call me"
    ).message.case
    agent = UserFactory()
    logged = call_log(
        case=case,
        by=agent,
        direction="outbound",
        number="(415) 555-0199",
        talk_seconds=312,
        note="Called back: refund confirmed, arrives Friday.",
        channel=channel,
    )
    assert logged.kind == "call" and logged.direction == Direction.OUT and logged.author == "agent"
    assert logged.author_user == agent and logged.thread == case.thread and logged.case == case
    assert logged.body == "Called back: refund confirmed, arrives Friday."
    assert logged.meta["direction"] == "outbound" and logged.meta["to"] == CALLER
    assert logged.meta["answered"] is True and logged.meta["talk_seconds"] == 312
    assert logged.meta["call_status"] == "completed" and logged.meta["manual"] is True
    assert logged.counts_as_agent_message
    case.refresh_from_db()
    assert case.first_response_at == logged.created_at and case.waiting_since is None


@pytest.mark.django_db
def test_manual_call_log_adds_the_number_and_guards_other_customers(channel):
    customer = CustomerFactory(name="Bruno")
    logged = call_log(
        thread=customer.thread, by=UserFactory(), direction="inbound", number="+14155550142", talk_seconds=0
    )
    assert logged.meta["answered"] is False and logged.meta["call_status"] == "no-answer"
    assert logged.meta["from"] == "+14155550142" and logged.case is None
    assert Identity.objects.get(kind="phone").customer == customer
    other = CustomerFactory()
    with pytest.raises(ValidationError, match="already belongs to"):
        call_log(thread=other.thread, by=None, direction="outbound", number="+14155550142", talk_seconds=60)
    with pytest.raises(ValidationError, match="inbound"):
        call_log(thread=other.thread, by=None, direction="sideways")
    assert Message.objects.count() == 1


# The screen pop, over the real WebSocket and Redis channel layer ------------------------------


async def _agent_socket(user):
    from django.conf import settings
    from django.test import Client

    browser = Client()
    await sync_to_async(browser.force_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie.encode())]
    communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


@pytest.mark.django_db(transaction=True)
async def test_screen_pop_reaches_online_agents_with_history(client):
    agent = await sync_to_async(UserFactory)()
    voice = await sync_to_async(twilio_channel)("voice")
    sms = await sync_to_async(twilio_channel)("sms")
    earlier = await sync_to_async(services.receive_inbound)(
        channel=sms,
        sender=Sender("phone", CALLER, "Ana Silva"),
        external_id="SMearly",
        text="Refund for #4411?",
    )
    socket = await _agent_socket(agent)

    await sync_to_async(twilio_post)(client, voice, "incoming.json")

    pop = None
    for _ in range(6):
        heard = await socket.receive_json_from(timeout=5)
        if heard["event"] == "call.incoming":
            pop = heard["data"]
            break
    assert pop is not None, "no screen pop"
    customer = await sync_to_async(lambda: earlier.message.thread.customer)()
    assert pop["customer"] == {
        "id": customer.pk,
        "name": "Ana Silva",
        "identities": [{"kind": "phone", "address": CALLER}],
    }
    assert pop["case"] == {"id": earlier.message.case_id, "status": "open", "assignee": None}
    assert (
        pop["call"]["call_sid"] == CALL_SID
        and pop["call"]["from"] == CALLER
        and pop["call"]["to"] == OUR_NUMBER
    )
    [last] = pop["messages"]
    assert last["channel"] == "sms" and last["direction"] == "in" and last["text"] == "Refund for #4411?"
    assert last["created_at"] == earlier.message.created_at.isoformat()
    await socket.disconnect()


@pytest.mark.django_db
def test_register_webhook_points_the_twilio_number_at_us(channel, provider, settings):

    settings.TWILIO_API_BASE_URL = provider.url
    settings.PUBLIC_BASE_URL = "https://help.example.com"
    provider.script(incoming_numbers_page(OUR_NUMBER), Reply(200, {"sid": "PN" + "0" * 31 + "1"}))
    note = adapter_for("voice").register_webhook(channel)
    listing, update = provider.requests
    assert listing.method == "GET" and listing.path == numbers_path() + ".json"
    assert listing.query["PhoneNumber"] == OUR_NUMBER
    assert update.method == "POST" and update.path == numbers_path() + "/PN" + "0" * 31 + "1.json"
    hook = f"https://help.example.com{channel.webhook_path}"
    assert update.form() == {
        "VoiceUrl": hook,
        "VoiceMethod": "POST",
        "StatusCallback": hook + "?event=call-status",
        "StatusCallbackMethod": "POST",
    }
    assert OUR_NUMBER in note


@pytest.mark.django_db
def test_register_webhook_explains_an_unknown_number(channel, provider, settings):

    settings.TWILIO_API_BASE_URL = provider.url
    provider.script(incoming_numbers_page())
    with pytest.raises(SendError, match="has no number"):
        adapter_for("voice").register_webhook(channel)


@pytest.mark.django_db
def test_withheld_number_call_is_still_on_record(client, channel):
    params = {**fixture_json("voice", "incoming.json"), "From": "+266696687", "Caller": "+266696687"}
    response, [event] = twilio_post(client, channel, params)
    assert event.status == InboundEvent.Status.PROCESSED
    message = call()
    assert message.body == "Call from a withheld number" and message.identity.kind == "api"
    assert message.thread.customer.name == "Withheld number"
    no_answer = {
        **fixture_json("voice", "status_no_answer.json"),
        "From": "+266696687",
        "Caller": "+266696687",
    }
    twilio_post(client, channel, no_answer, query={"event": "call-status"})
    assert call().meta["call_status"] == "no-answer" and Message.objects.count() == 1
    response, _ = twilio_post(
        client, channel, "whisper.json", query={"event": "whisper", "caller": "anonymous"}
    )
    assert twiml(response).find("Say").text == "Call from a withheld number."


@pytest.mark.django_db
def test_kpis_read_talk_time_and_abandonment_from_the_calls(client, channel):
    answered = fixture_json("voice", "incoming.json")
    unanswered = {**answered, "CallSid": "CA" + "1" * 32, "From": "+14155550142", "Caller": "+14155550142"}
    twilio_post(client, channel, answered)
    twilio_post(client, channel, "dial_completed.json", query={"event": "dial"})
    twilio_post(client, channel, "status_completed.json", query={"event": "call-status"})
    twilio_post(client, channel, unanswered)
    no_answer = {**fixture_json("voice", "status_no_answer.json"), "CallSid": "CA" + "1" * 32}
    twilio_post(client, channel, no_answer, query={"event": "call-status"})

    today = timezone.now().date()
    totals = kpi_report(start=today, end=today + timedelta(days=1), use_rollups=False, breakdowns=False)[
        "totals"
    ]
    assert totals["talk_seconds"] == 184
    assert totals["abandonment_rate"] == 0.5
