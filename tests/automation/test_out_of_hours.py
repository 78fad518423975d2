"""Out-of-hours reply: next opening in the customer's language, once per case per closed period."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from automation.models import OutOfHoursReply, OutOfHoursSent
from automation.out_of_hours import out_of_hours_reply
from conversations.models import Author, Case, Message
from kpis.models import BusinessHours
from tests.automation.factories import inbound
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db(transaction=True)

MADRID = ZoneInfo("Europe/Madrid")
# Monday 2026-11-30 22:00 in Madrid: closed; opens Tuesday 09:00.
MONDAY_NIGHT = datetime(2026, 11, 30, 22, 0, tzinfo=MADRID)
TUESDAY_NOON = datetime(2026, 12, 1, 12, 0, tzinfo=MADRID)
TUESDAY_NIGHT = datetime(2026, 12, 1, 22, 0, tzinfo=MADRID)


@pytest.fixture
def setup():
    channel = ChannelFactory()
    weekdays = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    BusinessHours.objects.create(name="Madrid office", time_zone="Europe/Madrid", weekly=weekdays)
    OutOfHoursReply.objects.create(channel=channel)
    return channel


def _config(channel, **fields):
    # Saved, not updated: saving clears the per-process cache of the channels' replies.
    reply = OutOfHoursReply.objects.get(channel=channel)
    for name, value in fields.items():
        setattr(reply, name, value)
    reply.save()


def _bot_replies(case_id):
    return list(Message.objects.filter(case_id=case_id, direction="out", author=Author.BOT, kind="text"))


def test_reply_once_per_closed_period_in_spanish(setup):
    # Received through the real pipeline; the automatic check runs at "now", so the
    # closed-hours behaviour is driven explicitly with a fixed moment.
    _config(setup, is_active=False)
    first = inbound(setup, "Hola", address="cliente@example.com").message
    customer = first.thread.customer
    customer.attributes = {"language": "es"}
    customer.save()
    _config(setup, is_active=True)
    reply = out_of_hours_reply(message=first, now=MONDAY_NIGHT)
    assert reply is not None and reply.author == Author.BOT
    assert reply.body.startswith("Ahora mismo estamos cerrados. Volvemos a abrir el 1 de diciembre de 2026")
    assert "09:00" in reply.body
    assert "Europe/Madrid" in reply.body
    # Off while it arrives, as the first: the pipeline's own check runs at the real
    # clock, which may be in another closed period (evenings in Madrid).
    _config(setup, is_active=False)
    second = inbound(setup, "¿Hay alguien?", address="cliente@example.com").message
    _config(setup, is_active=True)
    assert out_of_hours_reply(message=second, now=MONDAY_NIGHT) is None  # same closed period
    assert len(_bot_replies(first.case_id)) == 1
    case = Case.objects.get(pk=first.case_id)
    assert case.first_response_at is None and case.waiting_since is not None  # never a response
    # Open: nothing. The next closed period: once more.
    assert out_of_hours_reply(message=second, now=TUESDAY_NOON) is None
    assert out_of_hours_reply(message=second, now=TUESDAY_NIGHT) is not None
    assert OutOfHoursSent.objects.filter(case=case).count() == 2


def test_english_default_and_custom_text(setup):
    message = inbound(setup, "Hello").message
    reply = out_of_hours_reply(message=message, now=MONDAY_NIGHT)
    assert reply.body.startswith("We are closed right now. We open again on")
    assert "Dec" in reply.body or "December" in reply.body
    _config(setup, text_en="Back at {next_open}!")
    other = inbound(setup, "Hi", address="someone-else@example.com").message
    assert out_of_hours_reply(message=other, now=MONDAY_NIGHT).body.startswith("Back at ")


def test_channel_without_reply_sends_nothing(setup):
    other = ChannelFactory()
    message = inbound(other, "Hello").message
    assert out_of_hours_reply(message=message, now=MONDAY_NIGHT) is None


def test_sent_automatically_by_the_pipeline_when_closed(setup):
    """Round the clock closed (no weekly hours open now): the receiver answers by itself."""
    BusinessHours.objects.update(weekly={"sun": [["00:00", "00:01"]]})
    message = inbound(setup, "Hello").message
    assert len(_bot_replies(message.case_id)) == 1
    inbound(setup, "Again", address=message.identity.address)
    assert len(_bot_replies(message.case_id)) == 1
