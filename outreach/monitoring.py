"""Campaign monitoring: per campaign and per channel, the funnel and what it cost.

sent -> delivered -> read count step messages by their furthest status (a read
message was delivered and sent); replied counts outreaches the customer
answered, on the channel whose step was under way; fallbacks are steps that gave
way to the next channel; opt-outs are consents withdrawn after the campaign was
planned by its customers; cost is sent messages x the channel's
settings["cost_per_message"] (the monthly cost stays on the KPI dashboard).
A fixed number of queries, whatever the number of campaigns or messages.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db.models import Count, F, Q

from channels_adapters.models import Channel
from conversations.models import DeliveryStatus
from outreach.models import Campaign, Consent, ConsentStatus, OutreachStatus, OutreachStep, StepState
from outreach.rules import consent_scope

SENT = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ)
DELIVERED = (DeliveryStatus.DELIVERED, DeliveryStatus.READ)
COLUMNS = ("sent", "delivered", "read", "replied", "fallbacks", "skipped", "failed", "opt_outs", "cost")


def _price(channel) -> Decimal:
    raw = channel.settings.get("cost_per_message") if isinstance(channel.settings, dict) else None
    try:
        return Decimal(str(raw)) if raw not in (None, "") else Decimal(0)
    except (InvalidOperation, ValueError):
        return Decimal(0)  # a typo in a setting must not take the page down


def campaigns_funnel(*, campaigns: list[Campaign]) -> list[dict]:
    """[{"campaign", "channels": [{"channel", ...COLUMNS, "failures": {reason: n}}], "totals": {...}}]."""
    ids = [c.pk for c in campaigns]
    rows = (
        OutreachStep.objects.filter(outreach__campaign_id__in=ids)
        .values("outreach__campaign_id", "channel_id")
        .annotate(
            sent=Count("pk", filter=Q(message__status__in=SENT)),
            delivered=Count("pk", filter=Q(message__status__in=DELIVERED)),
            read=Count("pk", filter=Q(message__status=DeliveryStatus.READ)),
            failed=Count("pk", filter=Q(message__status=DeliveryStatus.FAILED)),
            fallbacks=Count("pk", filter=Q(state=StepState.FELL_BACK)),
            skipped=Count("pk", filter=Q(state=StepState.SKIPPED)),
            replied=Count(
                "pk",
                filter=Q(
                    state=StepState.CANCELLED, message__isnull=False, outreach__status=OutreachStatus.REPLIED
                ),
            ),
        )
    )
    failures = (
        OutreachStep.objects.filter(outreach__campaign_id__in=ids, message__status=DeliveryStatus.FAILED)
        .values("outreach__campaign_id", "channel_id", "message__error")
        .annotate(n=Count("pk"))
    )
    opt_outs = (
        Consent.objects.filter(
            status=ConsentStatus.OPTED_OUT,
            customer__outreaches__campaign_id__in=ids,
            updated_at__gte=F("customer__outreaches__campaign__planned_at"),
        )
        .values("customer__outreaches__campaign_id", "channel_kind")
        .annotate(n=Count("pk", distinct=True))
    )
    channel_ids = {r["channel_id"] for r in rows}
    channels = Channel.objects.only("pk", "name", "kind", "settings").in_bulk(channel_ids)
    table: dict[int, dict[int, dict]] = {pk: {} for pk in ids}
    for r in rows:
        channel = channels[r["channel_id"]]
        cost = _price(channel) * r["sent"]
        table[r["outreach__campaign_id"]][channel.pk] = {
            "channel": channel,
            **{k: r[k] for k in ("sent", "delivered", "read", "replied", "fallbacks", "skipped", "failed")},
            "opt_outs": 0,
            "cost": cost,
            "failures": {},
        }
    for f in failures:
        entry = table[f["outreach__campaign_id"]].get(f["channel_id"])
        if entry is not None:
            entry["failures"][f["message__error"] or "?"] = f["n"]
    for o in opt_outs:
        # An opt-out belongs to every channel of its kind the campaign used.
        for entry in table[o["customer__outreaches__campaign_id"]].values():
            if consent_scope(entry["channel"].kind) == o["channel_kind"]:
                entry["opt_outs"] += o["n"]
    result = []
    for campaign in campaigns:
        lines = sorted(table[campaign.pk].values(), key=lambda e: e["channel"].name)
        totals = {k: sum((e[k] for e in lines), Decimal(0) if k == "cost" else 0) for k in COLUMNS}
        result.append({"campaign": campaign, "channels": lines, "totals": totals})
    return result


def funnel_csv(*, funnel: list[dict]) -> tuple[list[str], list[list]]:
    header = [
        "campaign_id",
        "campaign",
        "status",
        "channel",
        "channel_kind",
        *COLUMNS,
        "currency",
        "failures",
    ]
    currency = settings.KPIS["CURRENCY"]
    out = []
    for block in funnel:
        campaign = block["campaign"]
        for e in block["channels"]:
            reasons = "; ".join(f"{reason} ({n})" for reason, n in sorted(e["failures"].items()))
            out.append(
                [
                    campaign.pk,
                    campaign.name,
                    campaign.status,
                    e["channel"].name,
                    e["channel"].kind,
                    *(e[k] for k in COLUMNS),
                    currency,
                    reasons,
                ]
            )
    return header, out
