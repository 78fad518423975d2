import pytest

from tests.channels_adapters.email_support import SmtpServer
from tests.outreach.support import channels, customer_with_phone_and_email, provider_answers


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def world(db, provider, smtp, settings):
    """Real clients pointed at the local servers; no quiet hours unless a test sets them."""
    settings.GRAPH_API_BASE_URL = provider.url
    settings.GRAPH_API_VERSION = "v23.0"
    settings.TWILIO_API_BASE_URL = provider.url
    settings.OUTREACH = {**settings.OUTREACH, "QUIET_HOURS": ""}
    provider_answers(provider)
    return {
        "provider": provider,
        "smtp": smtp,
        "customer": customer_with_phone_and_email(),
        **channels(smtp.port),
    }
