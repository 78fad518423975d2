"""Reads for outreach: what is due, a customer's outreaches, consent."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from conversations.models import DeliveryStatus
from outreach.models import Campaign, Consent, Outreach, OutreachStatus, OutreachStep, StepState


def outreaches_due(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Running outreaches with a move to make: a pending step due, or a waiting step to settle."""
    now = now or timezone.now()
    pending = OutreachStep.objects.filter(
        state=StepState.PENDING, outreach__status=OutreachStatus.RUNNING
    ).filter(Q(due_at__isnull=True) | Q(due_at__lte=now))
    # Later steps wait behind a step still watching its message: nothing to do for them.
    watching = OutreachStep.objects.filter(outreach_id=OuterRef("outreach_id"), state=StepState.WAITING)
    pending = pending.filter(~Exists(watching))
    waiting = OutreachStep.objects.filter(
        state=StepState.WAITING, outreach__status=OutreachStatus.RUNNING
    ).filter(
        Q(deadline_at__lte=now)
        | Q(message__status__in=(DeliveryStatus.FAILED, DeliveryStatus.DELIVERED, DeliveryStatus.READ))
        | Q(message__isnull=True)
    )
    pending = pending.exclude(outreach__campaign__status=Campaign.Status.PAUSED)
    ids = list(pending.values_list("outreach_id", flat=True)[:limit])
    ids += list(waiting.values_list("outreach_id", flat=True)[:limit])
    return sorted(set(ids))[:limit]


def customer_outreaches(*, customer_id: int, limit: int = 10) -> list[Outreach]:
    return list(
        Outreach.objects.filter(customer_id=customer_id)
        .select_related("created_by", "campaign")
        .prefetch_related("steps__channel", "steps__message")
        .order_by("-created_at")[:limit]
    )


def customer_consents(*, customer_id: int) -> list[Consent]:
    return list(Consent.objects.filter(customer_id=customer_id).order_by("channel_kind"))
