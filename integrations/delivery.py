"""Sending webhook deliveries: signed POSTs, retries with backoff, order per line, pause.

A delivery is claimed under a row lock and the claim committed before the
POST, so two workers never send it at once. Within one subscription and
ordering key (a "line", e.g. `case:42`) only the first pending delivery is
sent: the ones behind it wait until it is delivered (or an admin discards
it), so a receiver sees a case's events in the order they happened.
Delivery is at least once: a worker killed mid-POST leaves a claim that the
re-drive takes back, and the same `webhook-id` goes again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from django.core.mail import mail_admins
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext
from standardwebhooks import Webhook

from channels_adapters.http import provider_http
from integrations import selectors
from integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookSubscription
from integrations.selectors import conf

logger = logging.getLogger(__name__)

RESPONSE_EXCERPT_CHARS = 1000


@dataclass
class DeliveryOutcome:
    outcome: str  # delivered, retry, paused, waiting, skipped
    retry_in: float | None = None


def backoff_seconds(attempt: int) -> float:
    """Wait after the `attempt`-th failure: doubling from WEBHOOK_BACKOFF_SECONDS, capped."""
    return min(conf("BACKOFF_SECONDS") * (2 ** (attempt - 1)), conf("BACKOFF_MAX_SECONDS"))


def webhook_headers(*, secret: str, event_id: str, body: str, at: datetime | None = None) -> dict:
    """Standard Webhooks headers for `body`, signed now (the receiver checks the time too)."""
    at = at or datetime.fromtimestamp(int(time.time()), tz=UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
    }


def body_encode(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _claim(delivery_id: int, now: datetime) -> tuple[WebhookDelivery | None, str]:
    """Claim the delivery if it is due and first in its line, in one UPDATE.

    Its conditions are on the row itself: a second worker's UPDATE waits for
    the first one's row lock, then finds claimed_at set and claims nothing.
    """
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, claimed_at__isnull=True)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + timedelta(seconds=1)))
        .exclude(Exists(selectors.earlier_pending(OuterRef("pk"))))
        .update(claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        row = (
            WebhookDelivery.objects.filter(pk=delivery_id)
            .values("status", "claimed_at", "next_attempt_at")
            .first()
        )
        if row is None or row["status"] != DeliveryStatus.PENDING or row["claimed_at"] is not None:
            return None, "skipped"  # delivered, discarded, or another worker has it
        if row["next_attempt_at"] and row["next_attempt_at"] > now + timedelta(seconds=1):
            return None, "skipped"  # a re-drive's copy ahead of its retry time
        return None, "waiting"  # the one ahead in its line wakes it when delivered
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    if not subscription.is_active or subscription.paused_at is not None:
        # Rare (paused since it was queued): give the claim back untouched.
        WebhookDelivery.objects.filter(pk=delivery_id, claimed_at=now).update(
            claimed_at=None, attempts=F("attempts") - 1
        )
        return None, "paused"
    return delivery, ""


def _post(delivery: WebhookDelivery) -> tuple[bool, int | None, str, str]:
    """(succeeded, status code, response excerpt, error) of one signed POST."""
    body = body_encode(delivery.payload)
    headers = {
        **webhook_headers(secret=delivery.subscription.secret, event_id=delivery.event_id, body=body),
        "content-type": "application/json",
        "user-agent": "helpdesk-webhooks/1",
    }
    try:
        response = provider_http().post(
            delivery.subscription.url, content=body.encode(), headers=headers, timeout=conf("TIMEOUT_SECONDS")
        )
    except httpx.HTTPError as exc:
        return (
            False,
            None,
            "",
            gettext("Could not reach the receiver: %(error)s") % {"error": str(exc) or type(exc).__name__},
        )
    excerpt = response.text[:RESPONSE_EXCERPT_CHARS]
    if 200 <= response.status_code < 300:
        return True, response.status_code, excerpt, ""
    return (
        False,
        response.status_code,
        excerpt,
        gettext("The receiver answered HTTP %(status)s.") % {"status": response.status_code},
    )


def webhook_deliver(*, delivery_id: int) -> DeliveryOutcome:
    """Send one delivery if it is first in its line; record the attempt; schedule the retry or pause."""
    now = timezone.now()
    delivery, why = _claim(delivery_id, now)
    if delivery is None:
        return DeliveryOutcome(why)
    started = time.monotonic()
    try:
        ok, status_code, excerpt, error = _post(delivery)
    except Exception as exc:  # noqa: BLE001 - a bug here must not leave the claim for the timeout
        logger.exception("Unexpected error sending webhook delivery %s", delivery_id)
        ok, status_code, excerpt, error = (
            False,
            None,
            "",
            gettext("Unexpected error: %(error)s") % {"error": exc},
        )
    duration_ms = int((time.monotonic() - started) * 1000)
    finished = timezone.now()
    retry_in = None
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            at=now,
            status_code=status_code,
            duration_ms=duration_ms,
            response_excerpt=excerpt,
            error=error,
            succeeded=ok,
        )
        mine = WebhookDelivery.objects.filter(pk=delivery.pk, claimed_at=now)
        subscription = WebhookSubscription.objects.filter(pk=delivery.subscription_id)
        if ok:
            mine.update(
                status=DeliveryStatus.DELIVERED, delivered_at=finished, claimed_at=None, next_attempt_at=None
            )
            # No write on the way of every success: only a run of failures is reset
            # (as loaded at the claim; a failure counted meanwhile waits for the next success).
            if delivery.subscription.consecutive_failures:
                subscription.filter(consecutive_failures__gt=0).update(consecutive_failures=0)
            following = list(
                selectors.line_heads(
                    subscription_ids=[delivery.subscription_id], ordering_key=delivery.ordering_key
                ).values_list("pk", flat=True)[:1]
            )
            _enqueue_on_commit(following)
            return DeliveryOutcome("delivered")
        retry_in = backoff_seconds(delivery.attempts)
        mine.update(claimed_at=None, next_attempt_at=finished + timedelta(seconds=retry_in), last_error=error)
        # The update holds the subscription's row lock to the end of this
        # transaction: two failing workers count and pause exactly once.
        subscription.update(consecutive_failures=F("consecutive_failures") + 1)
        failures = subscription.values_list("consecutive_failures", flat=True).get()
        if failures >= conf("PAUSE_AFTER_FAILURES") and _pause(
            subscription_id=delivery.subscription_id, failures=failures, error=error, at=finished
        ):
            return DeliveryOutcome("paused")
    return DeliveryOutcome("retry", retry_in)


def _pause(*, subscription_id: int, failures: int, error: str, at: datetime) -> bool:
    reason = gettext(
        "Paused automatically after %(failures)s failed deliveries in a row. Last error: %(error)s"
    ) % {
        "failures": failures,
        "error": error,
    }
    paused = WebhookSubscription.objects.filter(pk=subscription_id, paused_at__isnull=True).update(
        paused_at=at, paused_reason=reason
    )
    if paused:
        subscription = WebhookSubscription.objects.get(pk=subscription_id)
        transaction.on_commit(lambda: _notify_paused(subscription))
    return bool(paused)


def _notify_paused(subscription: WebhookSubscription) -> None:
    try:
        mail_admins(
            gettext("Webhook subscription paused: %(name)s") % {"name": subscription},
            gettext(
                "The webhook subscription %(name)s (%(url)s) was paused.\n\n%(reason)s\n\n"
                "Its events are kept and go out in order once you resume it in the admin "
                "(Integrations > Webhook subscriptions > Resume)."
            )
            % {"name": subscription, "url": subscription.url, "reason": subscription.paused_reason},
        )
    except Exception:  # noqa: BLE001 - the pause stands and shows in the admin even if mail is down
        logger.exception("Could not mail admins about paused webhook subscription %s", subscription.pk)


def _enqueue_on_commit(delivery_ids: list[int]) -> None:
    from integrations.services import _enqueue_on_commit as enqueue

    if delivery_ids:
        enqueue(delivery_ids)


def webhooks_redrive(*, now: datetime | None = None) -> dict:
    """Beat task body: take back claims a dead worker left; enqueue line heads nobody is sending.

    A head is due when it was never enqueued (the broker was down at commit)
    or its retry time passed long enough ago that its retry task was lost.
    """
    from integrations.tasks import webhook_deliver as task

    now = now or timezone.now()
    interrupted = 0
    lost_before = now - timedelta(seconds=conf("CLAIM_TIMEOUT_SECONDS"))
    with transaction.atomic():
        lost = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True).filter(
                status=DeliveryStatus.PENDING, claimed_at__lt=lost_before
            )[:1000]
        )
        for delivery in lost:
            WebhookAttempt.objects.create(
                delivery=delivery,
                number=delivery.attempts,
                at=delivery.claimed_at,
                error=gettext("Interrupted: the worker stopped during the request. Sending it again."),
            )
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in lost]).update(
            claimed_at=None, next_attempt_at=None
        )
        interrupted = len(lost)
    stuck_before = now - timedelta(seconds=conf("STUCK_AFTER_SECONDS"))
    due = list(
        selectors.line_heads()
        .filter(claimed_at__isnull=True, created_at__lt=stuck_before)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=stuck_before))
        .values_list("pk", flat=True)[:1000]
    )
    for pk in due:
        task.delay(pk)
    return {"requeued": len(due), "interrupted": interrupted}
