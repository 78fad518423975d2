import pytest
from standardwebhooks import Webhook

from channels_adapters.base import Sender
from integrations.models import Event
from integrations.services import subscription_create
from tests.factories import ChannelFactory

ANA = Sender("email", "ana@example.com", "Ana Silva")


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.HELPDESK_WEBHOOKS = {
        **settings.HELPDESK_WEBHOOKS,
        "TIMEOUT_SECONDS": 5.0,
        "BACKOFF_SECONDS": 0.0,
        "BACKOFF_MAX_SECONDS": 1.0,
    }
    settings.ADMINS = [("Ops", "ops@example.com")]


@pytest.fixture
def receiver(provider):
    """The local webhook receiver: tests.provider_server, answering 200 unless scripted."""
    return provider


@pytest.fixture
def subscribe(receiver):
    def make(events=tuple(Event.values), path="/hook", **kwargs):
        return subscription_create(url=receiver.url + path, events=list(events), **kwargs)

    return make


@pytest.fixture
def channel(db):
    return ChannelFactory()


def verified(subscription, request) -> dict:
    """The body as a Standard Webhooks receiver reads it: its library checks the signature."""
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    return Webhook(subscription.secret).verify(request.body, headers)


class Broker:
    """The real Celery queue on Redis: what tasks were sent, read from the list kombu keeps."""

    def __init__(self):
        import redis
        from django.conf import settings

        self.redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self.redis.delete("celery")

    def delivery_ids(self) -> list[int]:
        import ast
        import json

        ids = []
        for raw in reversed(self.redis.lrange("celery", 0, -1)):  # LPUSHed: oldest last
            headers = json.loads(raw)["headers"]
            if headers["task"] == "integrations.tasks.webhook_deliver":
                ids.append(ast.literal_eval(headers["argsrepr"])[0])
        return ids


@pytest.fixture
def broker():
    return Broker()
