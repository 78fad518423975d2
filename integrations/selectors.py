"""Reads for outbound webhooks."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Exists, OuterRef

from helpdesk.process_cache import ProcessCache
from integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription


def conf(name: str):
    return settings.HELPDESK_WEBHOOKS[name]


# Every message and case change asks who listens: under an inbound burst that is
# the same few rows thousands of times a second, and usually none at all. The
# tuple (empty included) is cached; integrations.receivers clears it on save/delete.
subscriptions_cache = ProcessCache(ttl_seconds=lambda: conf("SUBSCRIPTION_CACHE_SECONDS"))


def subscriptions_recording() -> tuple[tuple[int, frozenset[str]], ...]:
    """(id, events) of every subscription events are recorded for (active, paused or not)."""
    return subscriptions_cache.get(
        "active",
        lambda: tuple(
            (pk, frozenset(events))
            for pk, events in WebhookSubscription.objects.filter(is_active=True)
            .order_by("pk")
            .values_list("pk", "events")
        ),
    )


def earlier_pending(delivery_ref) -> WebhookDelivery:
    """Pending deliveries ahead of `delivery_ref` (a delivery or OuterRef) in its line."""
    if isinstance(delivery_ref, WebhookDelivery):
        subscription, key, pk = delivery_ref.subscription_id, delivery_ref.ordering_key, delivery_ref.pk
    else:
        subscription, key, pk = OuterRef("subscription_id"), OuterRef("ordering_key"), OuterRef("pk")
    return WebhookDelivery.objects.filter(
        subscription_id=subscription, ordering_key=key, status=DeliveryStatus.PENDING, pk__lt=pk
    )


def line_heads(*, subscription_ids=None, ordering_key: str | None = None):
    """Pending deliveries first in their line, of subscriptions that may send."""
    heads = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING,
        subscription__is_active=True,
        subscription__paused_at__isnull=True,
    ).exclude(Exists(earlier_pending(OuterRef("pk"))))
    if subscription_ids is not None:
        heads = heads.filter(subscription_id__in=list(subscription_ids))
    if ordering_key is not None:
        heads = heads.filter(ordering_key=ordering_key)
    return heads
