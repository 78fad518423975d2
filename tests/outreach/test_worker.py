"""End to end through a real Celery worker on the Redis broker: start, a refused SMS, the email."""

from outreach import services
from outreach.models import OutreachStep
from tests.channels_adapters.twilio_support import twilio_error
from tests.conftest import wait_for
from tests.outreach.support import TWILIO_PREFIX, channels, customer_with_phone_and_email, sends


def test_a_refused_sms_falls_back_to_email_through_the_worker(live_worker, provider, smtp, settings):
    settings.TWILIO_API_BASE_URL = provider.url
    settings.OUTREACH = {**settings.OUTREACH, "QUIET_HOURS": ""}
    provider.script(twilio_error(21211, "The 'To' number is not a valid phone number."), path=TWILIO_PREFIX)
    world = channels(smtp.port)
    customer = customer_with_phone_and_email()
    outreach = services.outreach_start(
        customer=customer,
        chain=[
            {"channel": world["sms"].pk, "advance_on": "undelivered", "wait_minutes": 30},
            {"channel": world["email"].pk, "advance_on": "failed"},
        ],
        body="Your order shipped.",
        subject="Your order",
    )
    wait_for(lambda: smtp.received, timeout=30)
    assert len(sends(provider, TWILIO_PREFIX)) == 1
    states = list(
        OutreachStep.objects.filter(outreach=outreach).order_by("number").values_list("state", "reason")
    )
    assert states[0][0] == "fell_back" and "valid phone number" in states[0][1]
    assert states[1][0] == "waiting"
    assert len(smtp.received) == 1
