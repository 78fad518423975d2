"""Sending: signatures, retries with backoff, order per line, pause, replay, re-drive."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from conversations.cases import assign_case
from conversations.services import receive_inbound
from integrations import delivery, services
from integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookSubscription
from tests.factories import UserFactory
from tests.integrations.conftest import ANA, verified
from tests.provider_server import Reply

pytestmark = pytest.mark.django_db


def _inbound(channel, external_id="in-1", text="Where is my parcel?"):
    return receive_inbound(channel=channel, sender=ANA, external_id=external_id, text=text).message


def _make_due(*deliveries):
    # Time passing, for a retry scheduled in the future.
    WebhookDelivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(next_attempt_at=timezone.now())


def test_a_delivery_is_signed_per_standard_webhooks(subscribe, channel, receiver):
    subscription = subscribe(events=["message.created"])
    message = _inbound(channel)
    row = WebhookDelivery.objects.get()

    assert delivery.webhook_deliver(delivery_id=row.pk).outcome == "delivered"
    (request,) = receiver.requests
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == row.event_id
    assert request.headers["webhook-signature"].startswith("v1,")
    assert subscription.secret.startswith("whsec_")
    body = verified(subscription, request)
    assert body["type"] == "message.created" and body["data"]["message"]["id"] == message.pk
    # Another secret does not verify it.
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    other = services.subscription_secret_rotate(subscription=subscription)
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.body, headers)

    row.refresh_from_db()
    assert row.status == DeliveryStatus.DELIVERED and row.delivered_at and row.attempts == 1
    attempt = WebhookAttempt.objects.get(delivery=row)
    assert attempt.succeeded and attempt.status_code == 200 and attempt.duration_ms is not None


def test_a_rotated_secret_signs_from_then_on(subscribe, channel, receiver):
    subscription = subscribe(events=["message.created"])
    new = services.subscription_secret_rotate(subscription=subscription)
    _inbound(channel)
    delivery.webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk)
    headers = {k: v for k, v in receiver.requests[0].headers.items() if k.startswith("webhook-")}
    assert Webhook(new).verify(receiver.requests[0].body, headers)["type"] == "message.created"


def test_failures_retry_with_growing_backoff(subscribe, channel, receiver, settings):
    settings.HELPDESK_WEBHOOKS = {
        **settings.HELPDESK_WEBHOOKS,
        "BACKOFF_SECONDS": 10,
        "BACKOFF_MAX_SECONDS": 3600,
    }
    receiver.script(Reply(500, {"error": "boom"}), Reply(503, "busy"), Reply(200, "ok"))
    subscribe(events=["message.created"])
    _inbound(channel)
    row = WebhookDelivery.objects.get()

    first = delivery.webhook_deliver(delivery_id=row.pk)
    assert first.outcome == "retry" and first.retry_in == 10
    row.refresh_from_db()
    wait_1 = (row.next_attempt_at - timezone.now()).total_seconds()
    assert 8 < wait_1 <= 10 and row.status == "pending" and "HTTP 500" in row.last_error
    # Not due yet: a second task (a re-drive's copy) does nothing.
    assert delivery.webhook_deliver(delivery_id=row.pk).outcome == "skipped"

    _make_due(row)
    second = delivery.webhook_deliver(delivery_id=row.pk)
    assert second.outcome == "retry" and second.retry_in == 20
    row.refresh_from_db()
    assert 18 < (row.next_attempt_at - timezone.now()).total_seconds() <= 20

    _make_due(row)
    assert delivery.webhook_deliver(delivery_id=row.pk).outcome == "delivered"
    attempts = list(
        WebhookAttempt.objects.filter(delivery=row).values_list("number", "status_code", "succeeded")
    )
    assert attempts == [(1, 500, False), (2, 503, False), (3, 200, True)]
    assert WebhookAttempt.objects.get(delivery=row, number=1).response_excerpt == '{"error": "boom"}'
    assert len(receiver.requests) == 3
    # The same event id on every attempt: the receiver can drop a repeat.
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert WebhookSubscription.objects.get().consecutive_failures == 0


def test_an_unreachable_receiver_is_an_attempt_with_its_error(channel, settings):
    subscription = services.subscription_create(url="http://127.0.0.1:9/hook", events=["message.created"])
    _inbound(channel)
    outcome = delivery.webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk)
    assert outcome.outcome == "retry"
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("Could not reach the receiver")
    assert WebhookSubscription.objects.get(pk=subscription.pk).consecutive_failures == 1


def test_order_per_case_is_kept_when_an_earlier_delivery_failed(subscribe, channel, receiver):
    receiver.script(Reply(500, {}), Reply(200, {}))
    subscribe(events=["message.created", "case.assigned"])
    message = _inbound(channel)
    assign_case(case=message.case, assignee=UserFactory())
    other_case = _inbound_other(channel)
    first, second, other = WebhookDelivery.objects.order_by("pk")
    assert first.ordering_key == second.ordering_key != other.ordering_key

    assert delivery.webhook_deliver(delivery_id=first.pk).outcome == "retry"
    # The later event of that case waits for the first, even once its own task runs...
    assert delivery.webhook_deliver(delivery_id=second.pk).outcome == "waiting"
    # ...while another case's line is not held up.
    assert delivery.webhook_deliver(delivery_id=other.pk).outcome == "delivered"
    assert WebhookDelivery.objects.get(pk=second.pk).attempts == 0

    _make_due(first)
    assert delivery.webhook_deliver(delivery_id=first.pk).outcome == "delivered"
    assert delivery.webhook_deliver(delivery_id=second.pk).outcome == "delivered"
    sent = [
        r.json()["type"]
        for r in receiver.requests
        if r.json()["data"].get("message", {}).get("case_id") != other_case
    ]
    assert sent == ["message.created", "message.created", "case.assigned"]


def _inbound_other(channel):
    from channels_adapters.base import Sender

    return receive_inbound(
        channel=channel, sender=Sender("email", "bo@example.com"), external_id="other", text="hi"
    ).message.case_id


def test_the_next_in_line_is_woken_when_the_first_is_delivered(
    subscribe, channel, receiver, broker, django_capture_on_commit_callbacks
):
    subscribe(events=["message.created"])
    _inbound(channel, "in-1")
    _inbound(channel, "in-2")
    first, second = WebhookDelivery.objects.order_by("pk")
    with django_capture_on_commit_callbacks(execute=True):
        delivery.webhook_deliver(delivery_id=first.pk)
    assert broker.delivery_ids() == [second.pk]


def test_repeated_failures_pause_the_subscription_and_tell_the_admins(
    subscribe, channel, receiver, settings, django_capture_on_commit_callbacks
):
    settings.HELPDESK_WEBHOOKS = {**settings.HELPDESK_WEBHOOKS, "PAUSE_AFTER_FAILURES": 3}
    receiver.script(Reply(500, "down"))
    subscription = subscribe(events=["message.created"], description="CRM sync")
    _inbound(channel)
    row = WebhookDelivery.objects.get()
    outcomes = []
    for _ in range(3):
        _make_due(row)
        with django_capture_on_commit_callbacks(execute=True):
            outcomes.append(delivery.webhook_deliver(delivery_id=row.pk).outcome)
    assert outcomes == ["retry", "retry", "paused"]
    subscription.refresh_from_db()
    assert subscription.paused_at is not None and subscription.consecutive_failures == 3
    assert "3 failed deliveries in a row" in subscription.paused_reason
    assert "HTTP 500" in subscription.paused_reason
    (notice,) = mail.outbox
    assert notice.to == ["ops@example.com"] and "CRM sync" in notice.subject
    assert subscription.url in notice.body

    # Paused: nothing is sent, but new events are still kept for later.
    _make_due(row)
    assert delivery.webhook_deliver(delivery_id=row.pk).outcome == "paused"
    _inbound(channel, "in-2")
    assert WebhookDelivery.objects.filter(status="pending").count() == 2
    assert len(receiver.requests) == 3

    # Resumed: the held deliveries go out, in order.
    receiver.script(Reply(200, {}))
    assert services.subscription_resume(subscription=subscription) == 1
    subscription.refresh_from_db()
    assert subscription.paused_at is None and subscription.consecutive_failures == 0
    first, second = WebhookDelivery.objects.order_by("pk")
    assert delivery.webhook_deliver(delivery_id=second.pk).outcome == "waiting"
    assert delivery.webhook_deliver(delivery_id=first.pk).outcome == "delivered"
    assert delivery.webhook_deliver(delivery_id=second.pk).outcome == "delivered"


def test_replay_sends_the_same_event_again(subscribe, channel, receiver):
    subscription = subscribe(events=["message.created"])
    _inbound(channel)
    original = WebhookDelivery.objects.get()
    delivery.webhook_deliver(delivery_id=original.pk)

    (copy,) = services.deliveries_replay(deliveries=[WebhookDelivery.objects.get(pk=original.pk)])
    assert copy.replay_of_id == original.pk and copy.status == "pending"
    assert delivery.webhook_deliver(delivery_id=copy.pk).outcome == "delivered"
    first, again = receiver.requests
    assert again.body == first.body and again.headers["webhook-id"] == first.headers["webhook-id"]
    assert verified(subscription, again)["type"] == "message.created"


def test_discarding_a_stuck_delivery_lets_its_line_go_on(subscribe, channel, receiver):
    receiver.script(Reply(400, "bad payload"))
    subscribe(events=["message.created"])
    _inbound(channel, "in-1")
    _inbound(channel, "in-2")
    first, second = WebhookDelivery.objects.order_by("pk")
    delivery.webhook_deliver(delivery_id=first.pk)
    assert delivery.webhook_deliver(delivery_id=second.pk).outcome == "waiting"
    assert services.deliveries_discard(deliveries=[first]) == 1
    receiver.script(Reply(200, {}))
    assert delivery.webhook_deliver(delivery_id=second.pk).outcome == "delivered"
    assert WebhookDelivery.objects.get(pk=first.pk).status == DeliveryStatus.DISCARDED


def test_redrive_sends_a_delivery_whose_enqueue_was_lost(subscribe, channel, receiver, broker, settings):
    # The change committed but its task never reached the broker (it was down):
    # only the outbox row is left, and the beat task finds it.
    subscribe(events=["message.created", "case.opened"])
    _inbound(channel)  # its on-commit enqueue never runs here: the lost task
    assert delivery.webhooks_redrive()["requeued"] == 0  # too fresh: its own task may be on the way
    later = timezone.now() + timedelta(seconds=settings.HELPDESK_WEBHOOKS["STUCK_AFTER_SECONDS"] + 1)
    result = delivery.webhooks_redrive(now=later)
    queued = broker.delivery_ids()
    opened, created = WebhookDelivery.objects.order_by("pk")
    # Only the head of the case's line: the one behind it is woken when the head is delivered.
    assert result == {"requeued": 1, "interrupted": 0} and queued == [opened.pk]
    for pk in queued:
        delivery.webhook_deliver(delivery_id=pk)
    assert WebhookDelivery.objects.get(pk=opened.pk).status == "delivered"


def test_redrive_takes_back_a_claim_whose_worker_died(subscribe, channel, receiver, broker, settings):
    subscribe(events=["message.created"])
    _inbound(channel)
    row = WebhookDelivery.objects.get()
    long_ago = timezone.now() - timedelta(seconds=settings.HELPDESK_WEBHOOKS["CLAIM_TIMEOUT_SECONDS"] + 5)
    WebhookDelivery.objects.filter(pk=row.pk).update(claimed_at=long_ago, attempts=1, created_at=long_ago)
    # Claimed: no other worker touches it.
    assert delivery.webhook_deliver(delivery_id=row.pk).outcome == "skipped"
    assert delivery.webhooks_redrive() == {"requeued": 1, "interrupted": 1}
    assert broker.delivery_ids() == [row.pk]
    assert "Interrupted" in WebhookAttempt.objects.get(delivery=row).error
    assert delivery.webhook_deliver(delivery_id=row.pk).outcome == "delivered"
    assert list(WebhookAttempt.objects.filter(delivery=row).values_list("number", flat=True)) == [1, 2]
