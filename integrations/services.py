"""Writes for outbound webhooks: the outbox, subscriptions, replays.

Sending and its retries are in integrations/delivery.py.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations import selectors
from integrations.models import (
    DeliveryStatus,
    Event,
    WebhookDelivery,
    WebhookSubscription,
    secret_generate,
)


def _enqueue_on_commit(delivery_ids: list[int]) -> None:
    from integrations.tasks import webhook_deliver

    def enqueue():
        for pk in delivery_ids:
            webhook_deliver.delay(pk)

    transaction.on_commit(enqueue)


def webhook_event_record(*, event: str, data: dict, ordering_key: str) -> list[WebhookDelivery]:
    """The outbox: one delivery per subscription that wants `event`, in the caller's transaction.

    Rolled-back work leaves no row, and a broker that is down loses nothing:
    the row is the record, the task after commit only its fast path (a beat
    task re-drives what never got there).
    """
    wanted = [pk for pk, events in selectors.subscriptions_recording() if event in events]
    if not wanted:
        return []  # the common case: no query at all
    now = timezone.now()
    payload = {"type": event, "timestamp": now.isoformat(), "data": data}
    event_id = f"msg_{uuid.uuid4().hex}"
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                subscription_id=pk,
                event_id=event_id,
                event=event,
                payload=payload,
                ordering_key=ordering_key[:100],
                created_at=now,
            )
            for pk in wanted
        ]
    )
    _enqueue_on_commit([d.pk for d in deliveries])
    return deliveries


def _events_validate(events) -> list[str]:
    events = list(dict.fromkeys(events or []))
    unknown = [e for e in events if e not in Event.values]
    if unknown:
        raise ValidationError(_("Unknown event type: %(events)s.") % {"events": ", ".join(unknown)})
    if not events:
        raise ValidationError(_("Choose at least one event."))
    return events


def subscription_create(
    *, url: str, events, description: str = "", is_active: bool = True
) -> WebhookSubscription:
    """A new subscription with a fresh signing secret (shown once to whoever created it)."""
    subscription = WebhookSubscription(
        url=url, events=_events_validate(events), description=description, is_active=is_active
    )
    subscription.secret = secret_generate()
    subscription.full_clean()
    subscription.save()
    return subscription


def subscription_secret_rotate(*, subscription: WebhookSubscription) -> str:
    """A new secret at once: deliveries from now on are signed with it. Returns it."""
    secret = secret_generate()
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        subscription.secret = secret
        subscription.save(update_fields=["secret_store", "updated_at"])
    return secret


def subscription_resume(*, subscription: WebhookSubscription) -> int:
    """An admin resumes a paused subscription: what was held goes out, in order. Returns the lines woken."""
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        subscription.paused_at = None
        subscription.paused_reason = ""
        subscription.consecutive_failures = 0
        subscription.save(update_fields=["paused_at", "paused_reason", "consecutive_failures", "updated_at"])
        # The backoff is over: the first of each line goes now, not at its last retry time.
        heads = list(selectors.line_heads(subscription_ids=[subscription.pk]).values_list("pk", flat=True))
        WebhookDelivery.objects.filter(pk__in=heads, claimed_at__isnull=True).update(next_attempt_at=None)
        _enqueue_on_commit(heads)
    return len(heads)


def deliveries_replay(*, deliveries) -> list[WebhookDelivery]:
    """Send events again (an admin's re-send): new deliveries with the same webhook-id and body.

    The same webhook-id, as Standard Webhooks asks for a resend: a receiver that
    kept it may drop the repeat. Each goes behind anything pending in its line.
    """
    now = timezone.now()
    with transaction.atomic():
        copies = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    subscription_id=d.subscription_id,
                    event_id=d.event_id,
                    event=d.event,
                    payload=d.payload,
                    ordering_key=d.ordering_key,
                    created_at=now,
                    replay_of=d,
                )
                for d in sorted(deliveries, key=lambda d: d.pk)
            ]
        )
        _enqueue_on_commit([c.pk for c in copies])
    return copies


def deliveries_discard(*, deliveries) -> int:
    """An admin gives up on pending deliveries (a receiver that will never take them): their lines move on."""
    ids = [d.pk for d in deliveries]
    with transaction.atomic():
        discarded = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ids, status=DeliveryStatus.PENDING, claimed_at__isnull=True)
            .values_list("pk", "subscription_id", "ordering_key")
        )
        WebhookDelivery.objects.filter(pk__in=[row[0] for row in discarded]).update(
            status=DeliveryStatus.DISCARDED, next_attempt_at=None
        )
        woken = []
        for subscription_id in {row[1] for row in discarded}:
            keys = {row[2] for row in discarded if row[1] == subscription_id}
            for key in keys:
                woken += list(
                    selectors.line_heads(subscription_ids=[subscription_id], ordering_key=key).values_list(
                        "pk", flat=True
                    )
                )
        _enqueue_on_commit(woken)
    return len(discarded)
