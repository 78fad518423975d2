"""The whole pipeline on the real broker: webhook -> Redis -> worker -> database -> provider."""

import threading
from datetime import timedelta

import pytest
from celery.signals import task_postrun
from django.utils import timezone

from channels_adapters.base import Sender, hmac_sha256_hex
from conversations import delivery, services, statuses
from conversations.models import DeliveryAttempt, Direction, Message
from conversations.services import receive_inbound, send_reply
from tests.conftest import wait_for
from tests.factories import ChannelFactory, UserFactory
from tests.provider_server import Reply


def _api_channel(provider):
    return ChannelFactory(credentials={"secret": "api-secret", "callback_url": f"{provider.url}/callback"})


def _case(channel):
    return receive_inbound(
        channel=channel, sender=Sender("email", "ana@example.com"), external_id="in-1", text="hi"
    ).message.case


def test_webhook_is_processed_by_the_worker(live_worker, client, provider):
    channel = _api_channel(provider)
    body = b'{"external_id": "w-1", "from": {"phone": "+14155550123"}, "text": "via the queue"}'
    response = client.post(
        channel.webhook_path,
        data=body,
        content_type="application/json",
        headers={"X-Signature": "sha256=" + hmac_sha256_hex("api-secret", body)},
    )
    assert response.status_code == 200
    message = wait_for(lambda: Message.objects.filter(external_id="w-1").first())
    assert message.body == "via the queue"


def test_outbound_retries_then_succeeds(live_worker, provider):
    provider.script(Reply(503, {"error": "busy"}), Reply(200, {"external_id": "remote-9"}))
    channel = _api_channel(provider)
    reply = send_reply(case=_case(channel), author_user=UserFactory(), body="Your refund is on its way")

    sent = wait_for(lambda: Message.objects.filter(pk=reply.pk, status="sent").first())
    assert sent.external_id == "remote-9" and sent.error == ""
    attempts = list(DeliveryAttempt.objects.filter(message=reply).values_list("outcome", flat=True))
    assert attempts == ["retry", "sent"]
    assert len(provider.requests) == 2
    request = provider.requests[-1]
    assert request.json()["text"] == "Your refund is on its way"
    assert request.json()["to"] == {"email": "ana@example.com"}
    # Signed like inbound, so the receiver verifies us with the same code.
    assert request.headers["x-signature"] == "sha256=" + hmac_sha256_hex("api-secret", request.body)


def test_outbound_permanent_failure_is_shown_on_the_message(live_worker, provider):
    provider.script(Reply(422, {"error": "unknown recipient"}))
    channel = _api_channel(provider)
    reply = send_reply(case=_case(channel), author_user=UserFactory(), body="Hello?")

    failed = wait_for(lambda: Message.objects.filter(pk=reply.pk, status="failed").first())
    assert "refused the message (HTTP 422)" in failed.error
    assert "unknown recipient" in failed.error
    assert len(provider.requests) == 1  # a permanent error is not retried


def test_outbound_gives_up_after_max_attempts(live_worker, provider, settings):
    settings.HELPDESK = {**settings.HELPDESK, "OUTBOUND_MAX_ATTEMPTS": 3}
    provider.script(Reply(500, {}))
    channel = _api_channel(provider)
    reply = send_reply(case=_case(channel), author_user=UserFactory(), body="Hello?")
    failed = wait_for(lambda: Message.objects.filter(pk=reply.pk, status="failed").first())
    assert failed.error.startswith("Gave up after 3 attempts")
    assert DeliveryAttempt.objects.filter(message=reply).count() == 3


def test_stuck_queued_message_is_redriven_and_sent_once(live_worker, provider):
    provider.script(Reply(200, {"id": "remote-1"}))
    channel = _api_channel(provider)
    case = _case(channel)
    # The broker was down when the agent hit send: the row exists, no task does.
    stuck = Message.objects.create(
        thread=case.thread,
        case=case,
        channel=channel,
        identity=case.messages.first().identity,
        direction=Direction.OUT,
        author="agent",
        body="Sent while the broker was down",
        status="queued",
        created_at=timezone.now() - timedelta(minutes=5),
    )
    finished = []
    task_postrun.connect(lambda sender=None, **kw: finished.append(sender.name), weak=False)
    # Two beat runs before the worker gets to it: two tasks, one send. Published
    # together after both runs: any task's batch may take a due message
    # (conversations/batches.py), so the worker must not get the first one early.
    from conversations import tasks

    redriven = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.message_deliver, "delay", redriven.append)
        assert delivery.outbound_redrive()["requeued"] == 1
        assert delivery.outbound_redrive()["requeued"] == 1
    assert redriven == [stuck.pk, stuck.pk]
    for pk in redriven:
        tasks.message_deliver.apply_async((pk,))
    wait_for(lambda: finished.count("conversations.tasks.message_deliver") >= 2)
    assert Message.objects.get(pk=stuck.pk).status == "sent"
    assert len(provider.requests) == 1
    assert DeliveryAttempt.objects.filter(message=stuck).count() == 1
    assert delivery.outbound_redrive()["requeued"] == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_message_send_once(provider):
    provider.script(Reply(200, {"id": "remote-2"}))
    channel = _api_channel(provider)
    case = _case(channel)
    with pytest.MonkeyPatch.context() as mp:
        # Hold the first send in flight while the second task arrives.
        from conversations import tasks

        mp.setattr(tasks.message_deliver, "delay", lambda *a, **k: None)
        reply = send_reply(case=case, author_user=UserFactory(), body="Once only")
    barrier = threading.Barrier(2)
    outcomes = []

    def deliver():
        from django.db import connection

        barrier.wait()
        try:
            outcomes.append(delivery.message_deliver(message_id=reply.pk).outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 2, "a delivery thread crashed"
    assert sorted(outcomes) == ["sent", "skipped"]
    assert len(provider.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_interrupted_send_is_reported_never_resent(provider):
    channel = _api_channel(provider)
    case = _case(channel)
    message = Message.objects.create(
        thread=case.thread,
        case=case,
        channel=channel,
        identity=case.messages.first().identity,
        direction=Direction.OUT,
        author="agent",
        body="x",
        status="queued",
        created_at=timezone.now() - timedelta(hours=1),
        send_claimed_at=timezone.now() - timedelta(hours=1),
    )
    assert delivery.outbound_redrive()["interrupted"] == 1
    message.refresh_from_db()
    assert message.status == "unknown" and "outcome is unknown" in message.error
    assert provider.requests == []


@pytest.mark.django_db
def test_echo_arriving_before_the_send_returns_is_folded_into_the_sent_message(provider):
    """Instagram and X echo our own sends; the echo can win the race against the send's answer."""
    provider.script(Reply(200, {"external_id": "remote-echo-1"}))
    channel = _api_channel(provider)
    case = _case(channel)
    reply = send_reply(case=case, author_user=UserFactory(), body="On its way")
    echo = services.record_echo(
        channel=channel,
        recipient=Sender("email", "ana@example.com"),
        external_id="remote-echo-1",
        text="On its way",
    ).message
    statuses.message_status_update(channel=channel, external_id="remote-echo-1", status="delivered")

    assert delivery.message_deliver(message_id=reply.pk).outcome == "sent"

    reply.refresh_from_db()
    assert reply.external_id == "remote-echo-1"
    assert reply.status == "delivered", "a receipt the echo already got is kept"
    assert not Message.objects.filter(pk=echo.pk).exists()
    assert Message.objects.filter(thread=case.thread, direction="out").count() == 1
