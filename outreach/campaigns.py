"""Campaigns: a segment, a text per language, a chain; planned once, released under the throttle."""

from __future__ import annotations

import math
from datetime import date, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations.models import Case
from customers.models import Customer, Identity
from outreach import services, throttle
from outreach.machine import outreach_move
from outreach.models import (
    Campaign,
    Outreach,
    OutreachStatus,
    OutreachStep,
    Source,
)

PLAN_BATCH = 2000
SEGMENT_KEYS = {"attributes", "labels", "channels", "last_contact_before", "last_contact_after"}


def _day(value, key: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValidationError({"segment": _("'%(key)s' is a date, YYYY-MM-DD.") % {"key": key}}) from exc


def _identity_kinds(names: list[str]) -> set[str]:
    """Channel kinds ("whatsapp") or identity kinds ("phone"): the addresses that reach them."""
    kinds = set()
    for name in names:
        try:
            kinds.update(adapter_for(name).identity_kinds)
        except UnsupportedChannel:
            kinds.add(name)
    return kinds


def segment_validate(segment) -> dict:
    if not isinstance(segment, dict):
        raise ValidationError({"segment": _("A segment is an object.")})
    unknown = set(segment) - SEGMENT_KEYS
    if unknown:
        raise ValidationError(
            {"segment": _("Unknown segment keys: %(keys)s.") % {"keys": ", ".join(sorted(unknown))}}
        )
    if not isinstance(segment.get("attributes", {}), dict):
        raise ValidationError({"segment": _("'attributes' is an object of attribute: value.")})
    for key in ("labels", "channels"):
        value = segment.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError({"segment": _("'%(key)s' is a list of names.") % {"key": key}})
    for key in ("last_contact_before", "last_contact_after"):
        if segment.get(key):
            _day(segment[key], key)
    return segment


def segment_customers(segment: dict) -> QuerySet:
    """The customers a segment names, as one query (no per-customer work)."""
    segment = segment_validate(segment)
    customers = Customer.objects.all()
    for key, value in (segment.get("attributes") or {}).items():
        customers = customers.filter(**{f"attributes__{key}": value})
    if segment.get("labels"):
        labelled = Case.objects.filter(thread__customer_id=OuterRef("pk"), labels__name__in=segment["labels"])
        customers = customers.filter(Exists(labelled))
    if segment.get("channels"):
        kinds = _identity_kinds(segment["channels"])
        customers = customers.filter(
            Exists(Identity.objects.filter(customer_id=OuterRef("pk"), kind__in=kinds))
        )
    if segment.get("last_contact_before"):
        customers = customers.filter(
            thread__last_message_at__date__lt=_day(segment["last_contact_before"], "")
        )
    if segment.get("last_contact_after"):
        customers = customers.filter(
            thread__last_message_at__date__gte=_day(segment["last_contact_after"], "")
        )
    return customers


def _texts(campaign: Campaign) -> dict:
    texts = {m.language: m for m in campaign.messages.all()}
    if not texts:
        raise ValidationError(_("The campaign has no message: add one per language."))
    if campaign.default_language not in texts:
        raise ValidationError(
            _("The campaign has no message in its default language (%(lang)s).")
            % {"lang": campaign.default_language}
        )
    return texts


def _chain(campaign: Campaign) -> list[dict]:
    chain = [
        {"channel": s.channel_id, "advance_on": s.advance_on, "wait_minutes": s.wait_minutes}
        for s in campaign.chain.order_by("number")
    ]
    return services.chain_validate(chain)


def campaign_plan(*, campaign: Campaign) -> int:
    """Write one planned outreach (and its steps) per customer of the segment; returns how many.

    Planning happens once: the campaign's lock and planned_at make a second call a no-op.
    """
    texts = _texts(campaign)
    steps = _chain(campaign)
    for message in texts.values():
        services._content_validate(body=message.body, steps=steps)
    customers = segment_customers(campaign.segment)
    planned = 0
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.planned_at is not None:
            return 0
        now = timezone.now()
        rows = customers.order_by("pk").values_list("pk", "attributes").iterator(chunk_size=PLAN_BATCH)
        batch = []
        for customer_id, attributes in rows:
            batch.append((customer_id, attributes))
            if len(batch) >= PLAN_BATCH:
                planned += _plan_batch(campaign, batch, texts, steps, now)
                batch = []
        if batch:
            planned += _plan_batch(campaign, batch, texts, steps, now)
        campaign.planned_at = now
        campaign.save(update_fields=["planned_at"])
    return planned


def _plan_batch(campaign, batch, texts, steps, now) -> int:
    outreaches = []
    for customer_id, attributes in batch:
        language = attributes.get("language") if isinstance(attributes, dict) else None
        text = texts.get(language) or texts.get(str(language or "")[:2]) or texts[campaign.default_language]
        options = {"whatsapp": {"template": text.whatsapp_template}} if text.whatsapp_template else {}
        outreaches.append(
            Outreach(
                customer_id=customer_id,
                campaign=campaign,
                source=Source.CAMPAIGN,
                created_by=campaign.created_by,
                body=text.body,
                subject=text.subject,
                options=options,
                goal=campaign.goal,
                status=OutreachStatus.PLANNED,
                created_at=now,
            )
        )
    Outreach.objects.bulk_create(outreaches, batch_size=PLAN_BATCH)
    OutreachStep.objects.bulk_create(
        [step for outreach in outreaches for step in services._steps_build(outreach, steps)],
        batch_size=PLAN_BATCH * len(steps),
    )
    return len(outreaches)


def campaign_launch(*, campaign: Campaign, at: datetime | None = None) -> Campaign:
    """Immediate (no `at`) or scheduled: the beat tick plans and releases it when due."""
    _texts(campaign)
    _chain(campaign)
    segment_validate(campaign.segment)
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        raise ValidationError(_("Only a draft campaign can be launched."))
    campaign.scheduled_at = at or timezone.now()
    campaign.status = Campaign.Status.SCHEDULED
    campaign.save(update_fields=["scheduled_at", "status"])
    return campaign


def campaign_pause(*, campaign: Campaign) -> Campaign:
    if campaign.status not in (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED):
        raise ValidationError(_("Only a running or scheduled campaign can be paused."))
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    campaign.status = Campaign.Status.PAUSED
    return campaign


def campaign_resume(*, campaign: Campaign) -> Campaign:
    if campaign.status != Campaign.Status.PAUSED:
        raise ValidationError(_("Only a paused campaign can be resumed."))
    status = Campaign.Status.RUNNING if campaign.planned_at else Campaign.Status.SCHEDULED
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.status = status
    return campaign


def _release_budget(campaign: Campaign) -> int:
    """How many planned outreaches to start this tick: what the first channel may send until the next."""
    first = campaign.chain.select_related("channel").order_by("number").first()
    tick = float(settings.CELERY_BEAT_SCHEDULE["outreach-tick"]["schedule"])
    rate = throttle.channel_rate(campaign=campaign, channel=first.channel) if first else 1.0
    return max(1, min(settings.OUTREACH["DISPATCH_BATCH"], math.ceil(rate * tick)))


def campaign_release(*, campaign: Campaign, limit: int | None = None) -> int:
    """Start up to `limit` planned outreaches of a running campaign (their first steps are throttled)."""
    limit = limit if limit is not None else _release_budget(campaign)
    with transaction.atomic():
        ids = list(
            Outreach.objects.select_for_update(skip_locked=True)
            .filter(campaign=campaign, status=OutreachStatus.PLANNED)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        Outreach.objects.filter(pk__in=ids).update(status=OutreachStatus.RUNNING)
    for outreach_id in ids:
        services.outreach_advance(outreach_id=outreach_id)
    return len(ids)


def campaigns_dispatch(*, now: datetime | None = None) -> dict:
    """Beat: plan the campaigns that are due, release the running ones, close the finished ones."""
    now = now or timezone.now()
    released = 0
    for campaign in Campaign.objects.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now):
        campaign_plan(campaign=campaign)
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SCHEDULED).update(
            status=Campaign.Status.RUNNING
        )
    for campaign in Campaign.objects.filter(status=Campaign.Status.RUNNING):
        released += campaign_release(campaign=campaign)
        open_ = Outreach.objects.filter(
            campaign=campaign, status__in=(OutreachStatus.PLANNED, OutreachStatus.RUNNING)
        ).exists()
        if not open_:
            Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.RUNNING).update(
                status=Campaign.Status.FINISHED, finished_at=now
            )
    return {"released": released}


def outreach_cancel_planned(*, campaign: Campaign) -> int:
    """Planned outreaches of a campaign that will not go (used when an admin ends it)."""
    count = 0
    for outreach in Outreach.objects.filter(campaign=campaign, status=OutreachStatus.PLANNED):
        with transaction.atomic():
            outreach_move(outreach, OutreachStatus.CANCELLED, reason=_("campaign ended"))
        count += 1
    return count
