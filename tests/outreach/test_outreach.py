"""The outreach state machine against real clients and local provider servers."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from conversations import delivery, signals
from conversations.models import Case, DeliveryStatus, Direction, Message, MessageKind
from outreach import services
from outreach.models import Consent, Outreach, OutreachStatus, OutreachStep, StepState
from outreach.tasks import outreach_tick
from tests.outreach.support import (
    EMAIL,
    GRAPH_PREFIX,
    TEMPLATE,
    TWILIO_PREFIX,
    deliver_queued,
    sends,
    sms_inbound,
    sms_status,
    whatsapp_status,
)


def _start(world, chain, **kwargs):
    kwargs.setdefault("body", "Your order shipped: it arrives on Thursday.")
    kwargs.setdefault("options", {"whatsapp": {"template": TEMPLATE}})
    outreach = services.outreach_start(customer=world["customer"], chain=chain, **kwargs)
    services.outreach_advance(outreach_id=outreach.pk)
    return outreach


def _steps(outreach):
    return list(
        OutreachStep.objects.filter(outreach=outreach).order_by("number").values_list("state", flat=True)
    )


def _step(outreach, number):
    return OutreachStep.objects.select_related("message").get(outreach=outreach, number=number)


def test_fallback_on_an_undelivered_status_callback(world, client, django_capture_on_commit_callbacks):
    provider = world["provider"]
    with django_capture_on_commit_callbacks(execute=True):
        outreach = _start(
            world,
            [
                {"channel": world["whatsapp"].pk, "advance_on": "undelivered", "wait_minutes": 30},
                {"channel": world["sms"].pk, "advance_on": "undelivered", "wait_minutes": 30},
                {"channel": world["email"].pk, "advance_on": "failed"},
            ],
        )
        deliver_queued()
    # Never written on WhatsApp: outside the 24-hour window only the template may go.
    [wa_send] = sends(provider, GRAPH_PREFIX)
    assert wa_send.json()["type"] == "template"
    assert wa_send.json()["template"]["name"] == "order_shipped"
    assert _steps(outreach) == ["waiting", "pending", "pending"]

    with django_capture_on_commit_callbacks(execute=True):
        whatsapp_status(
            client,
            world["whatsapp"],
            wamid="wamid.OUT1",
            status="failed",
            errors=[{"code": 131026, "title": "Message undeliverable"}],
        )
    assert _steps(outreach) == ["fell_back", "waiting", "pending"]
    assert "undeliverable" in _step(outreach, 1).reason.lower()
    with django_capture_on_commit_callbacks(execute=True):
        deliver_queued()
    [sms_send] = sends(provider, TWILIO_PREFIX)
    assert sms_send.form()["Body"] == "Your order shipped: it arrives on Thursday."

    with django_capture_on_commit_callbacks(execute=True):
        sms_status(client, world["sms"], message=_step(outreach, 2).message, sid="SMout1", status="delivered")
    outreach.refresh_from_db()
    assert outreach.status == OutreachStatus.SUCCEEDED
    assert _steps(outreach) == ["fell_back", "succeeded", "cancelled"]
    assert world["smtp"].received == []
    events = list(
        Message.objects.filter(thread=world["customer"].thread, kind=MessageKind.SYSTEM).values_list(
            "body", flat=True
        )
    )
    assert any("started" in e for e in events) and any("reached the customer" in e for e in events)


def test_fallback_on_timeout_sends_the_email_with_unsubscribe_headers(
    world, django_capture_on_commit_callbacks
):
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False), django_capture_on_commit_callbacks(execute=True):
        outreach = _start(
            world,
            [
                {"channel": world["sms"].pk, "advance_on": "undelivered", "wait_minutes": 15},
                {"channel": world["email"].pk, "advance_on": "failed"},
            ],
            subject="Your order",
        )
        deliver_queued()
    assert _step(outreach, 1).message.status == DeliveryStatus.SENT
    with time_machine.travel(start + timedelta(minutes=14), tick=False):
        outreach_tick()
    assert _steps(outreach) == ["waiting", "pending"]

    with (
        time_machine.travel(start + timedelta(minutes=15, seconds=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        outreach_tick()
        deliver_queued()
    assert _steps(outreach) == ["fell_back", "waiting"]
    assert "15 minutes" in _step(outreach, 1).reason
    [mail] = world["smtp"].received
    message = mail.message
    assert mail.rcpt_tos == [EMAIL]
    unsubscribe = str(message["List-Unsubscribe"]).strip()
    assert unsubscribe.startswith("<http") and "/outreach/unsubscribe/" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Subject"].startswith("Your order")
    plain = message.get_body(preferencelist=("plain",)).get_content()
    assert "Your order shipped" in plain and "/outreach/unsubscribe/" in plain


def test_stop_on_read(world, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        outreach = _start(
            world,
            [
                {"channel": world["whatsapp"].pk, "advance_on": "unread", "wait_minutes": 240},
                {"channel": world["sms"].pk, "advance_on": "undelivered", "wait_minutes": 30},
            ],
            goal="read",
        )
        deliver_queued()
        whatsapp_status(client, world["whatsapp"], wamid="wamid.OUT1", status="delivered")
    # Delivered is not the goal here: it keeps waiting for the read.
    assert _steps(outreach) == ["waiting", "pending"]
    with django_capture_on_commit_callbacks(execute=True):
        whatsapp_status(client, world["whatsapp"], wamid="wamid.OUT1", status="read")
    outreach.refresh_from_db()
    assert outreach.status == OutreachStatus.SUCCEEDED
    assert _steps(outreach) == ["succeeded", "cancelled"]
    assert sends(world["provider"], TWILIO_PREFIX) == []


def test_unread_after_the_wait_falls_back(world, client, django_capture_on_commit_callbacks):
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False), django_capture_on_commit_callbacks(execute=True):
        outreach = _start(
            world,
            [
                {"channel": world["whatsapp"].pk, "advance_on": "unread", "wait_minutes": 240},
                {"channel": world["sms"].pk, "advance_on": "undelivered", "wait_minutes": 30},
            ],
            goal="read",
        )
        deliver_queued()
        whatsapp_status(client, world["whatsapp"], wamid="wamid.OUT1", status="delivered")
    with (
        time_machine.travel(start + timedelta(hours=4, seconds=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        outreach_tick()
        deliver_queued()
    assert _steps(outreach) == ["fell_back", "waiting"]
    assert len(sends(world["provider"], TWILIO_PREFIX)) == 1


def test_stop_on_reply_anywhere_and_the_reply_opens_a_case(world, client, django_capture_on_commit_callbacks):
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False), django_capture_on_commit_callbacks(execute=True):
        outreach = _start(
            world,
            [
                {"channel": world["whatsapp"].pk, "advance_on": "unread", "wait_minutes": 60},
                {"channel": world["email"].pk, "advance_on": "failed"},
            ],
            goal="read",
        )
        deliver_queued()
    with (
        time_machine.travel(start + timedelta(minutes=5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        # The customer answers by SMS, not where we wrote.
        sms_inbound(client, world["sms"], body="Thanks, can I change the address?")
    outreach.refresh_from_db()
    assert outreach.status == OutreachStatus.REPLIED
    assert _steps(outreach) == ["cancelled", "cancelled"]
    reply = Message.objects.get(direction=Direction.IN, body__startswith="Thanks")
    assert reply.thread_id == world["customer"].thread.pk
    assert Case.objects.filter(pk=reply.case_id, status="open").exists()
    with (
        time_machine.travel(start + timedelta(hours=3), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        outreach_tick()
        deliver_queued()
    assert world["smtp"].received == []


def test_opt_out_keyword_then_the_channel_is_skipped(world, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sms_inbound(client, world["sms"], body=" Baja. ")
    consent = Consent.objects.get(customer=world["customer"])
    assert (consent.channel_kind, consent.status, consent.source) == ("sms", "opted_out", "keyword")

    with django_capture_on_commit_callbacks(execute=True):
        outreach = _start(
            world,
            [
                {"channel": world["sms"].pk, "advance_on": "undelivered", "wait_minutes": 30},
                {"channel": world["email"].pk, "advance_on": "failed"},
            ],
        )
        deliver_queued()
    assert _steps(outreach) == ["skipped", "waiting"]
    assert "opted out" in _step(outreach, 1).reason
    assert sends(world["provider"], TWILIO_PREFIX) == []
    assert len(world["smtp"].received) == 1

    with django_capture_on_commit_callbacks(execute=True):
        sms_inbound(client, world["sms"], body="START", sid="SMin2")
    consent.refresh_from_db()
    assert consent.status == "opted_in"


@pytest.mark.parametrize("word", ["STOP", "unsubscribe"])
def test_each_opt_out_keyword_is_recorded_at_once(world, client, django_capture_on_commit_callbacks, word):
    with django_capture_on_commit_callbacks(execute=True):
        sms_inbound(client, world["sms"], body=word)
    assert Consent.objects.filter(customer=world["customer"], status="opted_out").count() == 1


def test_a_sentence_with_stop_in_it_is_not_an_opt_out(world, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sms_inbound(client, world["sms"], body="Please stop the delivery, I moved")
    assert not Consent.objects.exists()


def test_quiet_hours_delay_the_step_to_the_morning_in_the_customers_zone(
    world, settings, django_capture_on_commit_callbacks
):
    settings.OUTREACH = {**settings.OUTREACH, "QUIET_HOURS": "21:00-09:00"}
    customer = world["customer"]
    customer.attributes = {"timezone": "America/Mexico_City"}  # UTC-6
    customer.save()
    night = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)  # 22:00 in Mexico City
    with time_machine.travel(night, tick=False), django_capture_on_commit_callbacks(execute=True):
        outreach = _start(world, [{"channel": world["sms"].pk, "advance_on": "failed"}])
    step = _step(outreach, 1)
    assert step.state == StepState.PENDING and step.message is None
    assert step.due_at == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # 09:00 there
    with time_machine.travel(datetime(2026, 12, 2, 14, 59, tzinfo=UTC), tick=False):
        outreach_tick()
    assert _step(outreach, 1).message is None
    with (
        time_machine.travel(datetime(2026, 12, 2, 15, 0, 1, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        outreach_tick()
        deliver_queued()
    assert _step(outreach, 1).state == StepState.WAITING
    assert len(sends(world["provider"], TWILIO_PREFIX)) == 1


def test_no_double_send_after_a_crash_between_claim_and_send_and_a_redrive(
    world, django_capture_on_commit_callbacks
):
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        outreach = _start(
            world,
            [
                {"channel": world["sms"].pk, "advance_on": "undelivered", "wait_minutes": 30},
                {"channel": world["email"].pk, "advance_on": "failed"},
            ],
        )
        # The claim committed, then the worker died: its send task never ran.
        # Re-drives of the outreach (the tick, a duplicate task) find the step claimed.
        services.outreach_advance(outreach_id=outreach.pk)
        outreach_tick()
    assert Message.objects.filter(direction=Direction.OUT, kind=MessageKind.TEXT).count() == 1
    message = _step(outreach, 1).message
    assert message.status == DeliveryStatus.QUEUED
    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        # The core's re-drive re-enqueues the stuck message; the broker delivers it twice.
        assert delivery.outbound_redrive()["requeued"] == 1
        delivery.message_deliver(message_id=message.pk)
        delivery.message_deliver(message_id=message.pk)
        outreach_tick()
    assert len(sends(world["provider"], TWILIO_PREFIX)) == 1
    assert Message.objects.filter(direction=Direction.OUT, kind=MessageKind.TEXT).count() == 1
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT and message.attempts == 1


def test_a_crash_inside_the_claim_leaves_the_step_pending_and_the_redrive_claims_it_once(world):
    def die(sender, event, payload, ordering_key, **kwargs):
        if event == "message.created":
            raise RuntimeError("worker killed mid-step")

    outreach = services.outreach_start(
        customer=world["customer"],
        chain=[{"channel": world["sms"].pk, "advance_on": "failed"}],
        body="Your order shipped.",
    )
    signals.domain_event.connect(die, dispatch_uid="test-die")
    try:
        with pytest.raises(RuntimeError):
            services.outreach_advance(outreach_id=outreach.pk)
    finally:
        signals.domain_event.disconnect(dispatch_uid="test-die")
    assert _step(outreach, 1).state == StepState.PENDING
    assert not Message.objects.filter(direction=Direction.OUT, kind=MessageKind.TEXT).exists()
    outreach_tick()
    outreach_tick()
    deliver_queued()
    deliver_queued()
    assert Message.objects.filter(direction=Direction.OUT, kind=MessageKind.TEXT).count() == 1
    assert len(sends(world["provider"], TWILIO_PREFIX)) == 1


def test_a_send_cut_short_is_not_resent_and_the_chain_moves_on_after_the_wait(world, settings):
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        outreach = _start(
            world,
            [
                {"channel": world["sms"].pk, "advance_on": "undelivered", "wait_minutes": 10},
                {"channel": world["email"].pk, "advance_on": "failed"},
            ],
        )
        message = _step(outreach, 1).message
        # The worker claimed the send and died waiting for Twilio's answer.
        Message.objects.filter(pk=message.pk).update(send_claimed_at=timezone.now(), attempts=1)
    with time_machine.travel(start + timedelta(minutes=5), tick=False):
        delivery.outbound_redrive()
        deliver_queued()
    message.refresh_from_db()
    assert message.status == DeliveryStatus.UNKNOWN
    assert sends(world["provider"], TWILIO_PREFIX) == []
    with time_machine.travel(start + timedelta(minutes=11), tick=False):
        outreach_tick()
        deliver_queued()
    assert _steps(outreach) == ["fell_back", "waiting"]
    assert len(world["smtp"].received) == 1


def test_bad_input_is_refused_with_a_clear_error_and_writes_nothing(world):
    with pytest.raises(ValidationError, match="channel id"):
        services.outreach_start(customer=world["customer"], chain=[{"channel": "x"}], body="Hi")
    with pytest.raises(ValidationError, match="advance_on"):
        services.outreach_start(
            customer=world["customer"], chain=[{"channel": world["sms"].pk, "advance_on": "soon"}], body="Hi"
        )
    with pytest.raises(ValidationError, match="SMS long"):
        services.outreach_start(
            customer=world["customer"], chain=[{"channel": world["sms"].pk}], body="ç" * 400
        )
    assert not Outreach.objects.exists()


def test_sms_segments_follow_the_encoding():
    from outreach.rules import sms_segments

    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("€" * 80) == 1 and sms_segments("€" * 81) == 2  # extension chars count two
    assert sms_segments("ç" * 70) == 1 and sms_segments("ç" * 71) == 2  # ç is not GSM-7: UCS-2
