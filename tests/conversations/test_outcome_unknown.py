"""A send cut short by a crash: "may have been sent", settled by the provider, resent on the agent's word.

The crash is real where it can be: a process sending through the real client
is killed -9 while the provider holds the request.
"""

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from channels_adapters.base import Sender, hmac_sha256_hex
from conversations import delivery, services
from conversations.models import DeliveryAttempt, DeliveryStatus, Direction, Message
from tests.channels_adapters.meta_support import meta_headers, whatsapp_channel
from tests.channels_adapters.twilio_support import twilio_channel, twilio_post
from tests.conftest import wait_for
from tests.factories import ChannelFactory, UserFactory
from tests.provider_server import Reply
from tests.webhooks import check_webhook

_SEND_IN_A_PROCESS = """
import django
django.setup()
from conversations.delivery import message_deliver
message_deliver(message_id={message_id}, worker="celery@crashed")
"""


@pytest.fixture
def no_broker(monkeypatch):
    """Sends run in the test, not on a worker: what would be queued is listed instead."""
    from conversations import tasks

    queued = []
    monkeypatch.setattr(tasks.message_deliver, "delay", lambda pk: queued.append(pk))
    monkeypatch.setattr(tasks.message_deliver, "apply_async", lambda args, **kw: queued.append(args[0]))
    return queued


@pytest.fixture
def agent_client(client):
    user = UserFactory()
    client.force_login(user)
    return client


def _reply(channel, body="Your refund left today", address="ana@example.com", kind="email"):
    case = services.receive_inbound(
        channel=channel, sender=Sender(kind, address), external_id=f"in-{channel.pk}", text="hi"
    ).message.case
    return services.send_reply(case=case, author_user=UserFactory(), body=body)


def _unknown(message):
    """A send whose worker died after the provider got it."""
    now = timezone.now() - timedelta(minutes=30)
    Message.objects.filter(pk=message.pk).update(send_claimed_at=now, attempts=1)
    DeliveryAttempt.objects.create(message=message, number=1, started_at=now, worker="celery@gone")
    assert delivery.outbound_recover(worker="celery@gone")["interrupted"] == 1
    message.refresh_from_db()
    assert message.status == DeliveryStatus.UNKNOWN
    return message


@pytest.mark.django_db(transaction=True)
def test_a_send_killed_mid_request_may_have_been_sent_and_goes_again_only_when_confirmed(
    provider, no_broker, agent_client
):
    provider.script(
        Reply(200, {"external_id": "remote-1"}, delay=20), Reply(200, {"external_id": "remote-1"})
    )
    channel = ChannelFactory(credentials={"secret": "api-secret", "callback_url": f"{provider.url}/callback"})
    reply = _reply(channel)
    no_broker.clear()
    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"],
    }
    sender = subprocess.Popen([sys.executable, "-c", _SEND_IN_A_PROCESS.format(message_id=reply.pk)], env=env)
    try:
        wait_for(lambda: provider.requests, timeout=30)  # the provider has the message...
    finally:
        sender.send_signal(signal.SIGKILL)  # ...and the worker dies before the answer
        sender.wait()

    # The node starts again: no need to wait for the claim timeout.
    assert delivery.outbound_recover(worker="celery@crashed")["interrupted"] == 1
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.UNKNOWN and reply.send_claimed_at is None
    assert "may have received it" in reply.error
    [attempt] = DeliveryAttempt.objects.filter(message=reply)
    assert attempt.outcome == DeliveryAttempt.Outcome.UNKNOWN and attempt.worker == "celery@crashed"

    html = agent_client.get(f"/inbox/case/{reply.case_id}/").content.decode()
    assert "May have been sent" in html and "Not sent:" not in html
    assert f'action="/inbox/message/{reply.pk}/retry/" data-ajax data-confirm="' in html

    url = f"/inbox/message/{reply.pk}/retry/"
    refused = agent_client.post(url, {}, headers={"X-Requested-With": "fetch"})
    assert refused.status_code == 400 and "may already have reached the customer" in refused.json()["error"]
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.UNKNOWN and no_broker == []

    confirmed = agent_client.post(url, {"confirmed": "yes"}, headers={"X-Requested-With": "fetch"})
    assert confirmed.json()["ok"] is True and no_broker == [reply.pk]
    assert delivery.message_deliver(message_id=reply.pk).outcome == "sent"

    first, second = provider.requests
    # The same message to the provider: same idempotency key, same id in the body.
    assert (
        first.headers["idempotency-key"]
        == second.headers["idempotency-key"]
        == f"helpdesk-message-{reply.pk}"
    )
    assert first.json()["id"] == second.json()["id"] == reply.pk
    outcomes = list(DeliveryAttempt.objects.filter(message=reply).values_list("number", "outcome"))
    assert outcomes == [(1, "unknown"), (2, "sent")]


@pytest.mark.django_db
def test_a_claim_past_the_timeout_becomes_unknown_and_only_that_nodes_claims_on_its_restart(no_broker):
    channel = ChannelFactory()
    mine, theirs, waiting = (_reply(channel, body=f"m{n}") for n in range(3))
    started = timezone.now() - timedelta(seconds=5)
    for message, worker in ((mine, "celery@a"), (theirs, "celery@b")):
        Message.objects.filter(pk=message.pk).update(send_claimed_at=started, attempts=1)
        DeliveryAttempt.objects.create(message=message, number=1, started_at=started, worker=worker)
    no_broker.clear()

    assert delivery.outbound_recover(worker="celery@a") == {"requeued": 1, "interrupted": 1, "resent": 0}
    assert no_broker == [waiting.pk]  # its task may have died in the killed worker's prefetch
    statuses = dict(Message.objects.filter(direction=Direction.OUT).values_list("pk", "status"))
    # celery@b may still be sending: it is left to the claim timeout.
    assert statuses == {mine.pk: "unknown", theirs.pk: "queued", waiting.pk: "queued"}


@pytest.mark.django_db
def test_a_twilio_status_callback_naming_our_message_settles_an_unknown_outcome(client, no_broker):
    channel = twilio_channel("sms")
    message = _unknown(_reply(channel, address="+14155550199", kind="phone"))

    _, [event] = twilio_post(
        client, channel, "status_delivered.json", query={"event": "status", "message": message.pk}
    )

    assert event.summary["statuses"] == 1
    message.refresh_from_db()
    assert message.status == DeliveryStatus.DELIVERED and message.error == ""
    assert message.external_id == "SMaaaa0000bbbb1111cccc2222dddd3333"
    assert message.sent_at is not None and message.delivered_at is not None
    [attempt] = DeliveryAttempt.objects.filter(message=message)
    assert attempt.outcome == DeliveryAttempt.Outcome.SENT and "status callback" in attempt.error


@pytest.mark.django_db
def test_a_late_callback_of_the_first_try_stops_a_confirmed_resend(client, no_broker):
    channel = twilio_channel("sms")
    message = _unknown(_reply(channel, address="+14155550199", kind="phone"))
    delivery.message_retry(message=message, confirmed=True)

    twilio_post(client, channel, "status_sent.json", query={"event": "status", "message": message.pk})

    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert delivery.message_deliver(message_id=message.pk).outcome == "skipped"


@pytest.mark.django_db
def test_a_whatsapp_status_with_our_reference_settles_a_send_in_flight(client, no_broker):
    channel = whatsapp_channel()
    message = _reply(channel, address="+34612345678", kind="phone")
    Message.objects.filter(pk=message.pk).update(send_claimed_at=timezone.now(), attempts=1)
    status = {
        "id": "wamid.settled.1",
        "status": "sent",
        "timestamp": "1763630170",
        "recipient_id": "34612345678",
        "biz_opaque_callback_data": f"helpdesk-message-{message.pk}",
    }
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"phone_number_id": "106540352242922"},
                                "statuses": [status],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()

    check_webhook(client, channel, body, headers=meta_headers(body))

    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT and message.external_id == "wamid.settled.1"
    assert message.send_claimed_at is None


@pytest.mark.django_db
def test_an_api_status_may_name_our_message_id_and_a_failure_is_definite(client, no_broker):
    channel = ChannelFactory(credentials={"secret": "api-secret", "callback_url": "http://127.0.0.1:9/"})
    message = _unknown(_reply(channel))
    body = json.dumps(
        {"type": "status", "message_id": message.pk, "status": "failed", "error": "no such user"}
    )

    signature = "sha256=" + hmac_sha256_hex("api-secret", body.encode())
    check_webhook(client, channel, body.encode(), headers={"X-Signature": signature})

    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED and message.error == "no such user"
    # A definite failure needs no confirmation.
    assert delivery.message_retry(message=message).status == DeliveryStatus.QUEUED


@pytest.mark.django_db
def test_where_the_receiver_keeps_idempotency_keys_a_cut_short_send_simply_goes_again(
    provider, no_broker, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(
        credentials={"secret": "api-secret", "callback_url": f"{provider.url}/callback"},
        settings={"receiver_keeps_idempotency_keys": True},
    )
    message = _reply(channel)
    Message.objects.filter(pk=message.pk).update(send_claimed_at=timezone.now(), attempts=1)
    DeliveryAttempt.objects.create(message=message, number=1, started_at=timezone.now(), worker="celery@gone")
    no_broker.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert delivery.outbound_recover(worker="celery@gone") == {
            "requeued": 0,
            "interrupted": 0,
            "resent": 1,
        }

    message.refresh_from_db()
    assert message.status == DeliveryStatus.QUEUED and "same idempotency key" in message.error
    assert no_broker == [message.pk]
    assert delivery.message_deliver(message_id=message.pk).outcome == "sent"
    assert provider.requests[-1].headers["idempotency-key"] == f"helpdesk-message-{message.pk}"
