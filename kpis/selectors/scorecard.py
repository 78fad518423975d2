"""The channel scorecard: per-channel KPIs, share and a verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from channels_adapters.models import Channel
from conversations.models import RESPONSE_STATUSES, Direction, Message, MessageKind
from kpis.conf import kpis_conf as _conf
from kpis.selectors.counters import day_bounds
from kpis.selectors.reports import _daily_cost, _days, cost_per_case, kpi_report

REVIEW, KEEP, GROW, TOO_FEW = "review", "keep", "grow", "too_few"
# The scorecard's KPIs, all read from kpi_report (cost per case aside: it adds message costs).
SCORECARD_KPIS = ("volume", "tme_seconds", "tma_seconds", "fcr", "csat", "abandonment_rate", "sla_compliance")
# Providers bill the messages they carried: every inbound one, and outbound ones they accepted.
BILLED_KINDS = (MessageKind.TEXT, MessageKind.MEDIA)


@dataclass(frozen=True)
class VerdictRule:
    """The thresholds of the scorecard's verdict (settings.KPIS["SCORECARD_*"])."""

    min_cases: int
    review_csat_below: float
    review_cost_above: float
    review_share_below: float
    grow_csat_from: float
    grow_cost_up_to: float

    @classmethod
    def from_settings(cls) -> VerdictRule:
        return cls(
            min_cases=_conf("SCORECARD_MIN_CASES"),
            review_csat_below=_conf("SCORECARD_REVIEW_CSAT_BELOW"),
            review_cost_above=_conf("SCORECARD_REVIEW_COST_ABOVE"),
            review_share_below=_conf("SCORECARD_REVIEW_SHARE_BELOW"),
            grow_csat_from=_conf("SCORECARD_GROW_CSAT_FROM"),
            grow_cost_up_to=_conf("SCORECARD_GROW_COST_UP_TO"),
        )


def channel_verdict(
    *,
    volume: int,
    share: float | None,
    csat: float | None,
    cost: float,
    per_case: float | None,
    rule: VerdictRule,
) -> tuple[str, list[str]]:
    """(verdict, reasons): review, keep, grow or too_few, and which thresholds decided it.

    A missing CSAT (nobody answered a survey) neither condemns nor promotes a channel.
    """
    if not volume:
        # Paying for a channel nobody uses is the clearest case for a review.
        return (REVIEW, ["no_cases"]) if cost > 0 else (TOO_FEW, [])
    if volume < rule.min_cases:
        return TOO_FEW, []
    reasons = []
    if csat is not None and csat < rule.review_csat_below:
        reasons.append("csat_below")
    if per_case is not None and per_case > rule.review_cost_above:
        reasons.append("cost_above")
    if cost > 0 and share is not None and share < rule.review_share_below:
        reasons.append("share_below")
    if reasons:
        return REVIEW, reasons
    if csat is not None and csat >= rule.grow_csat_from and (per_case or 0) <= rule.grow_cost_up_to:
        return GROW, ["csat_from", "cost_up_to"]
    return KEEP, []


def _billed_messages(start_at, end_at, channel_ids) -> dict[int, int]:
    if not channel_ids:
        return {}
    rows = (
        Message.objects.filter(
            channel_id__in=channel_ids, kind__in=BILLED_KINDS, created_at__gte=start_at, created_at__lt=end_at
        )
        .filter(Q(direction=Direction.IN) | Q(direction=Direction.OUT, status__in=RESPONSE_STATUSES))
        .order_by()
        .values("channel_id")
        .annotate(n=Count("pk"))
    )
    return {row["channel_id"]: row["n"] for row in rows}


def _share_buckets(start: date, end: date, most: int = 8) -> list[tuple[date, date]]:
    days = (end - start).days
    size = max(1, -(-days // most))  # ceil: at most `most` buckets of equal length, the last one shorter
    return [
        (s, min(s + timedelta(days=size), end))
        for s in (start + timedelta(days=i) for i in range(0, days, size))
    ]


def channel_scorecard(*, start: date, end: date, now: datetime | None = None) -> dict:
    """Every channel of the company for [start, end), ranked by volume, with its verdict.

    The KPIs are kpi_report's (rollups and live days alike); the trend compares the volume
    with the period of the same length just before; the share series adds up the report's
    per-day volumes over at most eight slices of the period, so the query count grows
    neither with the number of channels nor with the slices.
    """
    now = now or timezone.now()
    length = end - start
    report = kpi_report(start=start, end=end, now=now, channel_days=True)
    volume_by_day = report.pop("volume_by_channel_day")
    previous = kpi_report(start=start - length, end=start, now=now)
    channels = {
        c.key: c
        for c in Channel.objects.only("pk", "key", "name", "kind", "monthly_cost", "settings", "is_active")
    }
    # Only channels with a per-message cost need their messages counted.
    per_message = {}
    for c in channels.values():
        raw = c.settings.get("cost_per_message") if isinstance(c.settings, dict) else None
        try:
            price = float(raw) if raw not in (None, "") else 0.0
        except (TypeError, ValueError):
            price = 0.0  # A typo in a setting must not take the page down; the admin sees 0 cost.
        if price > 0:
            per_message[c.pk] = price
    start_at, end_at = day_bounds(start, end)
    billed = _billed_messages(start_at, end_at, list(per_message))
    days = _days(start, end)
    rule = VerdictRule.from_settings()
    total_volume = report["totals"]["volume"]

    rows = []
    for key, kpis in report["by_channel"].items():
        channel = channels[key]
        fixed = sum(_daily_cost(channel.monthly_cost, d) for d in days)
        messages = billed.get(channel.pk, 0)
        message_cost = messages * per_message.get(channel.pk, 0.0)
        cost = fixed + message_cost
        volume = kpis["volume"]
        before = previous["by_channel"].get(key, {}).get("volume", 0)
        share = volume / total_volume if total_volume else None
        per_case = cost_per_case(cost=cost, cases=volume)
        verdict, reasons = channel_verdict(
            volume=volume, share=share, csat=kpis["csat"], cost=cost, per_case=per_case, rule=rule
        )
        rows.append(
            {
                "key": key,
                "name": channel.name,
                "kind": channel.kind,
                **{name: kpis[name] for name in SCORECARD_KPIS},
                "previous_volume": before,
                "volume_change": (volume - before) / before if before else None,
                "share": share,
                "monthly_cost_in_period": round(fixed, 2),
                "billed_messages": messages,
                "cost_per_message": per_message.get(channel.pk, 0.0),
                "message_cost": round(message_cost, 2),
                "cost": round(cost, 2),
                "cost_per_case": per_case,
                "verdict": verdict,
                "reasons": reasons,
            }
        )
    rows.sort(key=lambda r: (-r["volume"], r["name"].lower()))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank

    # The share series slices the report's own per-day volumes: no query per slice.
    key_of = {c.pk: key for key, c in channels.items()}
    share_series = []
    for b_start, b_end in _share_buckets(start, end):
        volumes = {
            pk: sum(n for day, n in per_day.items() if b_start <= day < b_end)
            for pk, per_day in volume_by_day.items()
        }
        share_series.append(
            {
                "from": b_start.isoformat(),
                "to": b_end.isoformat(),
                "total": sum(volumes.values()),
                "volumes": {
                    key: sum(n for pk, n in volumes.items() if key_of.get(pk) == key)
                    for key in report["by_channel"]
                },
            }
        )
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "currency": _conf("CURRENCY"),
        "total_volume": total_volume,
        "previous_total_volume": previous["totals"]["volume"],
        "rule": {
            "min_cases": rule.min_cases,
            "review_csat_below": rule.review_csat_below,
            "review_cost_above": rule.review_cost_above,
            "review_share_below": rule.review_share_below,
            "grow_csat_from": rule.grow_csat_from,
            "grow_cost_up_to": rule.grow_cost_up_to,
        },
        "channels": rows,
        "share_series": share_series,
    }
