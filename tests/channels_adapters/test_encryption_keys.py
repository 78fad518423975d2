"""A wrong or missing FIELD_ENCRYPTION_KEYS: webhooks answer 503 (providers retry), /readyz fails."""

import io
import json

import pytest
from cryptography.fernet import Fernet

from channels_adapters.base import hmac_sha256_hex
from channels_adapters.models import InboundEvent
from helpdesk.process_cache import process_caches_clear
from tests.factories import ChannelFactory
from tests.webhooks import fixture_bytes

pytestmark = pytest.mark.django_db

WRITTEN_WITH = Fernet.generate_key().decode()
OTHER_KEY = Fernet.generate_key().decode()


@pytest.fixture
def channel(settings):
    settings.FIELD_ENCRYPTION_KEYS = [WRITTEN_WITH]
    return ChannelFactory(credentials={"secret": "api-secret", "callback_url": "http://x"})


def _post(client, channel):
    body = fixture_bytes("api", "message.json")
    headers = {"X-Signature": "sha256=" + hmac_sha256_hex("api-secret", body)}
    return client.post(f"/hooks/{channel.key}/", data=body, content_type="application/json", headers=headers)


def _keys(settings, keys):
    settings.FIELD_ENCRYPTION_KEYS = keys
    process_caches_clear()  # a running process would see the change after CHANNEL_CACHE_SECONDS


@pytest.mark.parametrize("keys", [[OTHER_KEY], ["not-a-fernet-key"]], ids=["wrong-key", "malformed-key"])
def test_webhook_answers_503_with_retry_after_and_stores_nothing(client, channel, settings, keys, caplog):
    _keys(settings, keys)

    response = _post(client, channel)

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "FIELD_ENCRYPTION_KEYS" in response.content.decode()
    assert InboundEvent.objects.count() == 0
    assert any("cannot be decrypted" in r.getMessage() for r in caplog.records)


def test_after_the_key_is_fixed_the_providers_retry_is_accepted(client, channel, settings):
    _keys(settings, [OTHER_KEY])
    assert _post(client, channel).status_code == 503

    # Key rotation done right: the new key first, the one the secrets were written with after it.
    _keys(settings, [OTHER_KEY, WRITTEN_WITH])
    assert _post(client, channel).status_code == 200
    assert InboundEvent.objects.count() == 1


def test_readyz_is_ready_when_every_channel_decrypts(client, channel):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"ok": True, "checks": {"database": "ok", "redis": "ok", "credentials": "ok"}}


def test_readyz_fails_while_healthz_stays_up_when_credentials_cannot_be_decrypted(client, channel, settings):
    ChannelFactory()  # a second channel, written with the same key
    _keys(settings, [OTHER_KEY])

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False and body["checks"]["database"] == "ok"
    assert body["checks"]["credentials"].startswith("failed: 2 channel(s)")
    # Liveness only says the process answers: it is not what routes traffic.
    assert client.get("/healthz").status_code == 200


def test_readyz_fails_when_redis_is_down(client, channel, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("failed: ")
    assert "127.0.0.1" not in response.content.decode()  # details go to the log, not the public answer


def test_readiness_command_fails_with_the_reason_when_credentials_cannot_be_decrypted(channel, settings):
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("readiness", stdout=out)
    assert json.loads(out.getvalue())["ok"] is True

    _keys(settings, [OTHER_KEY])
    with pytest.raises(CommandError, match="credentials failed: 1 channel"):
        call_command("readiness", stdout=io.StringIO())


def test_a_worker_with_the_wrong_key_leaves_stored_events_waiting_uncounted(client, channel, settings):
    from channels_adapters.services import inbound_event_process

    assert _post(client, channel).status_code == 200
    event = InboundEvent.objects.get()
    _keys(settings, [OTHER_KEY])  # the worker was deployed without the right key

    inbound_event_process(event_id=event.pk)

    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PENDING and event.attempts == 0
    _keys(settings, [WRITTEN_WITH])
    inbound_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PROCESSED and event.attempts == 1
