"""The KPI engine: DESIGN.md's "KPI definitions" as SQL aggregates.

Everything is computed as counters per (day, channel, agent, team) in the
database: `daily_counters` groups raw cases, calls and survey answers; the
daily rollup stores exactly those groups (KpiDaily), and `kpi_report` adds the
groups up per dimension (again in SQL for rolled-up days) and turns the sums
into KPIs. A rollup and a live computation therefore agree by construction,
and a test checks it.

First response: Case.first_response_at, which the core sets when the first
agent reply is accepted by its provider (sent, delivered or read) or a call is
answered, never at queueing; a reply that then fails for good is withdrawn
(conversations.services.case_response_withdraw). Bot lines, automatic messages
and notes never set it; a reopened case keeps it. "Exactly one agent message"
(FCR) counts the messages themselves, with the same rules: only agent messages
that reached the customer (REACHED_CUSTOMER), so a failed or still queued
reply is not one. docs/kpis.md "What counts, and when" has every decision.

Attribution: a case belongs to the channel it was opened on, its assignee and
its team; a call to the channel it came on and its case's assignee and team;
a survey answer to the channel, agent and team of the case it was sent for.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from channels_adapters.models import Channel
from conversations.models import (
    REACHED_CUSTOMER,
    RESPONSE_STATUSES,
    Author,
    Case,
    CaseStatus,
    Direction,
    Message,
    MessageKind,
)
from kpis.models import KpiDaily, KpiDayTotal, KpiRollupDay, SurveyAnswer

KPI_NAMES = (
    "volume",
    "tme_seconds",
    "resolution_seconds",
    "tma_seconds",
    "talk_seconds",
    "fcr",
    "abandonment_rate",
    "csat",
    "nps",
    "ces",
    "sla_compliance",
    "cost_per_case",
)

COUNTERS = tuple(
    f.name
    for f in KpiDaily._meta.get_fields()
    if f.concrete and f.name not in ("id", "day", "channel", "agent", "team")
)

# Twilio's final CallStatus values of a call nobody answered.
UNANSWERED_CALL_STATUSES = ("busy", "no-answer", "canceled", "failed")
FINAL_CALL_STATUSES = ("completed", *UNANSWERED_CALL_STATUSES)


def _conf(name):
    return settings.KPIS[name]


@dataclass(frozen=True)
class KpiFilter:
    channel_id: int | None = None
    agent_id: int | None = None
    team_id: int | None = None

    @property
    def is_empty(self) -> bool:
        return self.channel_id is None and self.agent_id is None and self.team_id is None


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start, end) in days -> aware datetimes in the server's time zone."""
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(end, time.min), tz),
    )


def _agent_messages():
    # DESIGN.md "Authorship": agent messages count; bot, automatic, notes and system lines do not.
    # And only once they reached the customer: a queued or failed reply is no answer.
    return (
        Message.objects.filter(case=OuterRef("pk"), author=Author.AGENT, direction=Direction.OUT)
        .exclude(kind__in=(MessageKind.NOTE, MessageKind.SYSTEM))
        .filter(REACHED_CUSTOMER)
    )


def _agent_message_count():
    agent = _agent_messages().order_by().values("case")
    return Coalesce(Subquery(agent.annotate(n=Count("pk")).values("n")), Value(0))


def _seconds_between(later, earlier):
    return ExpressionWrapper(F(later) - F(earlier), output_field=DurationField())


def _case_filter(flt: KpiFilter) -> Q:
    q = Q()
    if flt.channel_id is not None:
        q &= Q(origin_channel_id=flt.channel_id)
    if flt.agent_id is not None:
        q &= Q(assignee_id=flt.agent_id)
    if flt.team_id is not None:
        q &= Q(team_id=flt.team_id)
    return q


def _dims_filter(flt: KpiFilter, channel: str, agent: str, team: str) -> Q:
    q = Q()
    if flt.channel_id is not None:
        q &= Q(**{channel: flt.channel_id})
    if flt.agent_id is not None:
        q &= Q(**{agent: flt.agent_id})
    if flt.team_id is not None:
        q &= Q(**{team: flt.team_id})
    return q


def _opened_rows(start_at, end_at, flt: KpiFilter, now: datetime):
    """Volume, TME, abandoned cases and SLA: cases opened in the period."""
    tz = timezone.get_current_timezone()
    cases = Case.objects.filter(_case_filter(flt), opened_at__gte=start_at, opened_at__lt=end_at).order_by()
    # A scalar subquery, not EXISTS: PostgreSQL turns an EXISTS into a hash of every
    # answered call of the company (68,000 at 10M messages, 26 of the live day's 36 ms),
    # while this one probes the partial index for the few cases that reach the test.
    answered_call = Message.objects.filter(case=OuterRef("pk"), kind=MessageKind.CALL, meta__answered=True)
    cases = cases.annotate(answered_call_id=Subquery(answered_call.values("pk")[:1]))
    responded = Q(first_response_at__isnull=False)
    # Calls are counted one by one (see _call_rows), so cases opened on a phone
    # channel do not count a second time in the abandonment rate.
    abandon_base = ~Q(origin_channel__kind="voice")
    expired = Q(opened_at__lt=now - timedelta(hours=_conf("ABANDON_AFTER_HOURS")))
    abandoned = (
        abandon_base
        & Q(first_response_at__isnull=True)
        & (Q(status=CaseStatus.RESOLVED) | expired)
        & Q(answered_call_id__isnull=True)
    )
    due = Q(sla__first_response_due__isnull=False)
    sla_known = due & (responded | Q(sla__first_response_due__lt=now))
    sla_met = due & responded & Q(first_response_at__lte=F("sla__first_response_due"))
    return (
        cases.annotate(day=TruncDate("opened_at", tzinfo=tz))
        .values("day", "origin_channel_id", "assignee_id", "team_id")
        .annotate(
            cases_opened=Count("pk"),
            responded=Count("pk", filter=responded),
            first_response_sum=Sum(_seconds_between("first_response_at", "opened_at"), filter=responded),
            abandon_base=Count("pk", filter=abandon_base),
            abandoned_cases=Count("pk", filter=abandoned),
            sla_count=Count("pk", filter=sla_known),
            sla_met=Count("pk", filter=sla_met),
        )
    )


def _resolved_rows(start_at, end_at, flt: KpiFilter):
    """Resolution time, TMA and FCR: cases whose last resolution falls in the period."""
    tz = timezone.get_current_timezone()
    cases = Case.objects.filter(
        _case_filter(flt), status=CaseStatus.RESOLVED, resolved_at__gte=start_at, resolved_at__lt=end_at
    ).order_by()
    cases = cases.annotate(agent_messages=_agent_message_count())
    responded = Q(first_response_at__isnull=False)
    return (
        cases.annotate(day=TruncDate("resolved_at", tzinfo=tz))
        .values("day", "origin_channel_id", "assignee_id", "team_id")
        .annotate(
            resolved=Count("pk"),
            resolution_sum=Sum(_seconds_between("resolved_at", "opened_at")),
            handled=Count("pk", filter=responded),
            # A reply sent a moment after the agent resolved (reply and resolve, the worker
            # sends after commit) is a handle time of 0, never a negative one.
            handle_sum=Sum(
                _seconds_between("resolved_at", "first_response_at"),
                filter=responded & Q(first_response_at__lte=F("resolved_at")),
            ),
            # The cheap tests first: the message count is only needed for answered, never reopened cases.
            fcr_base=Count("pk", filter=responded),
            fcr_met=Count("pk", filter=responded & Q(reopen_count=0) & Q(agent_messages=1)),
        )
    )


def _call_rows(start_at, end_at, flt: KpiFilter):
    """Talk time and unanswered inbound calls, from the call meta keys in docs/contracts.md."""
    tz = timezone.get_current_timezone()
    inbound = Q(meta__direction="inbound", meta__call_status__in=FINAL_CALL_STATUSES)
    unanswered = Q(meta__call_status__in=UNANSWERED_CALL_STATUSES) | Q(
        meta__call_status="completed", meta__answered=False
    )
    talked = Q(meta__answered=True, meta__talk_seconds__isnull=False)
    return (
        Message.objects.filter(
            _dims_filter(flt, "channel_id", "case__assignee_id", "case__team_id"),
            # A call that ended in voicemail becomes kind "voicemail" with the same call meta.
            kind__in=(MessageKind.CALL, MessageKind.VOICEMAIL),
            created_at__gte=start_at,
            created_at__lt=end_at,
        )
        .order_by()
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "channel_id", "case__assignee_id", "case__team_id")
        .annotate(
            inbound_calls=Count("pk", filter=inbound),
            abandoned_calls=Count("pk", filter=inbound & unanswered),
            talk_count=Count("pk", filter=talked),
            talk_sum=Sum(Cast(KT("meta__talk_seconds"), IntegerField()), filter=talked),
        )
    )


def _answer_rows(start_at, end_at, flt: KpiFilter):
    """CSAT, NPS and CES from the answers received in the period."""
    tz = timezone.get_current_timezone()
    return (
        SurveyAnswer.objects.filter(
            _dims_filter(flt, "channel_id", "agent_id", "team_id"),
            answered_at__gte=start_at,
            answered_at__lt=end_at,
        )
        .order_by()
        .annotate(day=TruncDate("answered_at", tzinfo=tz))
        .values("day", "channel_id", "agent_id", "team_id")
        .annotate(
            csat_count=Count("pk", filter=Q(kind="csat")),
            csat_positive=Count("pk", filter=Q(kind="csat", score__gte=4)),
            nps_count=Count("pk", filter=Q(kind="nps")),
            nps_promoters=Count("pk", filter=Q(kind="nps", score__gte=9)),
            nps_detractors=Count("pk", filter=Q(kind="nps", score__lte=6)),
            ces_count=Count("pk", filter=Q(kind="ces")),
            ces_sum=Sum("score", filter=Q(kind="ces")),
        )
    )


def daily_counters(*, start: date, end: date, flt: KpiFilter = KpiFilter(), now: datetime | None = None):
    """Live counters for the days [start, end): {(day, channel, agent, team): {counter: value}}.

    Four grouped queries; Python only adds up their (already aggregated) rows.
    """
    now = now or timezone.now()
    start_at, end_at = day_bounds(start, end)
    groups: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    sources = (
        (_opened_rows(start_at, end_at, flt, now), "origin_channel_id", "assignee_id", "team_id"),
        (_resolved_rows(start_at, end_at, flt), "origin_channel_id", "assignee_id", "team_id"),
        (_call_rows(start_at, end_at, flt), "channel_id", "case__assignee_id", "case__team_id"),
        (_answer_rows(start_at, end_at, flt), "channel_id", "agent_id", "team_id"),
    )
    for rows, channel, agent, team in sources:
        for row in rows:
            key = (row.pop("day"), row.pop(channel), row.pop(agent), row.pop(team))
            target = groups[key]
            for name, value in row.items():
                if value is None:
                    continue
                if isinstance(value, timedelta):
                    value = value.total_seconds()
                target[name] += value
    return dict(groups)


# Reports -----------------------------------------------------------------


def kpis_from_counters(c: dict, cost: float | None = None) -> dict:
    """DESIGN.md's KPIs from summed counters; null when there is nothing to average."""

    def ratio(num, den):
        return None if not den else num / den

    volume = c.get("cases_opened", 0)
    return {
        "volume": volume,
        "tme_seconds": ratio(c["first_response_sum"], c["responded"]),
        "resolution_seconds": ratio(c["resolution_sum"], c["resolved"]),
        "tma_seconds": ratio(c["handle_sum"], c["handled"]),
        "talk_seconds": ratio(c["talk_sum"], c["talk_count"]),
        "fcr": ratio(c["fcr_met"], c["fcr_base"]),
        "abandonment_rate": ratio(
            c["abandoned_cases"] + c["abandoned_calls"], c["abandon_base"] + c["inbound_calls"]
        ),
        "csat": ratio(c["csat_positive"], c["csat_count"]),
        "nps": ratio(c["nps_promoters"] - c["nps_detractors"], c["nps_count"]),
        "ces": ratio(c["ces_sum"], c["ces_count"]),
        "sla_compliance": ratio(c["sla_met"], c["sla_count"]),
        "cost_per_case": cost_per_case(cost=cost, cases=volume),
    }


def cost_per_case(*, cost: float | None, cases: int) -> float | None:
    """DESIGN.md's cost per case: a cost divided by the cases opened; null with no cost or no case."""
    if cost is None or not cases:
        return None
    return cost / cases


def _empty() -> dict:
    return dict.fromkeys(COUNTERS, 0)


def _add(target: dict, source: dict) -> None:
    for name in COUNTERS:
        value = source.get(name)
        if value:
            target[name] += value


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def _daily_cost(monthly_cost, day: date) -> float:
    # A whole month costs exactly the channel's monthly cost.
    return float(monthly_cost) / calendar.monthrange(day.year, day.month)[1]


def kpi_report(
    *,
    start: date,
    end: date,
    flt: KpiFilter = KpiFilter(),
    use_rollups: bool = True,
    breakdowns: bool = True,
    series: bool = True,
    channel_days: bool = False,
    now: datetime | None = None,
) -> dict:
    """Every KPI for [start, end): totals, by channel, agent and team, and per day.

    Rolled-up days are read from KpiDaily, grouped in SQL per dimension; the
    other days (today, or any day the rollup has not reached) are computed live.
    channel_days adds "volume_by_channel_day", {channel_id or None: {day: cases
    opened}}, for charts over slices of the period (one more grouped query).
    series=False (with breakdowns=False): the totals alone, for a comparison
    period; "series" is then empty.
    """
    now = now or timezone.now()
    days = _days(start, end)
    rolled: set[date] = set()
    if use_rollups and days:
        today = timezone.localdate(now)
        rolled = set(
            KpiRollupDay.objects.filter(day__gte=start, day__lt=min(end, today)).values_list("day", flat=True)
        )
    live_days = [d for d in days if d not in rolled]
    day_volumes: dict[int | None, dict[date, int]] = defaultdict(lambda: defaultdict(int))

    totals = _empty()
    per_day: dict[date, dict] = {d: _empty() for d in days}
    by: dict[str, dict] = {
        "channel": defaultdict(_empty),
        "agent": defaultdict(_empty),
        "team": defaultdict(_empty),
    }

    if rolled:
        base = KpiDaily.objects.filter(day__in=rolled).order_by()
        base = base.filter(_dims_filter(flt, "channel_id", "agent_id", "team_id"))
        sums = {name: Sum(name) for name in COUNTERS}
        day_totals = _day_totals(rolled) if flt.is_empty else None
        if day_totals is not None:
            for day, row in day_totals.items():
                _add(per_day[day], row)
                _add(totals, row)
            if breakdowns:
                for row in base.values("channel_id", "agent_id", "team_id").annotate(**sums):
                    _add(by["channel"][row["channel_id"]], row)
                    _add(by["agent"][row["agent_id"]], row)
                    _add(by["team"][row["team_id"]], row)
        elif breakdowns and connection.vendor != "postgresql":
            # SQLite (a developer's laptop) has no GROUPING SETS: the same sums, two reads.
            for row in base.values("day").annotate(**sums):
                _add(per_day[row["day"]], row)
                _add(totals, row)
            for row in base.values("channel_id", "agent_id", "team_id").annotate(**sums):
                _add(by["channel"][row["channel_id"]], row)
                _add(by["agent"][row["agent_id"]], row)
                _add(by["team"][row["team_id"]], row)
        elif breakdowns:
            for row in _rolled_sums(rolled, flt):
                if row.pop("by_day"):
                    _add(per_day[row["day"]], row)
                    _add(totals, row)
                else:
                    _add(by["channel"][row["channel_id"]], row)
                    _add(by["agent"][row["agent_id"]], row)
                    _add(by["team"][row["team_id"]], row)
        elif series:
            for row in base.values("day").annotate(**sums):
                _add(per_day[row["day"]], row)
                _add(totals, row)
        else:
            _add(totals, base.aggregate(**sums))
        if channel_days:
            for row in base.values("day", "channel_id").annotate(opened=Sum("cases_opened")):
                day_volumes[row["channel_id"]][row["day"]] += row["opened"] or 0

    if live_days:
        live = daily_counters(start=min(live_days), end=max(live_days) + timedelta(days=1), flt=flt, now=now)
        wanted = set(live_days)
        for (day, channel_id, agent_id, team_id), counters in live.items():
            if day not in wanted:
                continue
            _add(totals, counters)
            _add(per_day[day], counters)
            if breakdowns:
                _add(by["channel"][channel_id], counters)
                _add(by["agent"][agent_id], counters)
                _add(by["team"][team_id], counters)
            if channel_days:
                day_volumes[channel_id][day] += counters.get("cases_opened", 0)

    # Cost is per channel: it has a meaning for all channels or one, not per agent or team.
    channels = {
        c.pk: c for c in Channel.objects.only("pk", "key", "name", "kind", "monthly_cost", "is_active")
    }
    costed = flt.agent_id is None and flt.team_id is None

    def cost_of(channel_ids, on_days) -> float | None:
        if not costed:
            return None
        return sum(_daily_cost(channels[pk].monthly_cost, d) for pk in channel_ids for d in on_days)

    all_ids = [flt.channel_id] if flt.channel_id is not None else list(channels)
    all_ids = [pk for pk in all_ids if pk in channels]
    report = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "totals": kpis_from_counters(totals, cost_of(all_ids, days)),
        "series": [
            {"date": d.isoformat(), **kpis_from_counters(per_day[d], cost_of(all_ids, [d]))} for d in days
        ]
        if series
        else [],
    }
    if breakdowns:
        if costed:
            # A channel that costs money and brought no case is exactly what a supervisor
            # must see: every active channel is listed, not only the busy ones.
            for pk in all_ids:
                if channels[pk].is_active:
                    by["channel"][pk]  # noqa: B018 - defaultdict: creates its empty counters
        report["by_channel"] = {
            channels[pk].key: kpis_from_counters(c, cost_of([pk], days))
            for pk, c in sorted(by["channel"].items(), key=lambda i: i[0] or 0)
            if pk in channels
        }
        report["by_agent"] = {
            str(pk): kpis_from_counters(c)
            for pk, c in sorted(by["agent"].items(), key=lambda i: i[0] or 0)
            if pk
        }
        report["by_team"] = {
            str(pk): kpis_from_counters(c)
            for pk, c in sorted(by["team"].items(), key=lambda i: i[0] or 0)
            if pk
        }
    if channel_days:
        report["volume_by_channel_day"] = {pk: dict(v) for pk, v in day_volumes.items()}
    return report


def _day_totals(days: set[date]) -> dict[date, dict] | None:
    """The rolled-up days' totals over every channel, agent and team (KpiDayTotal), or
    None when one of the days has none (rolled up before those existed): sum KpiDaily."""
    rows = {row.pop("day"): row for row in KpiDayTotal.objects.filter(day__in=days).values("day", *COUNTERS)}
    return rows if len(rows) == len(days) else None


def _rolled_sums(days: set[date], flt: KpiFilter) -> list[dict]:
    """The KpiDaily counters of `days` summed per day ("by_day" true) and per (channel,
    agent, team) ("by_day" false), in one read of the rows: GROUPING SETS, which the
    ORM does not write. Two GROUP BYs read the ≈53,000 rows of a 90-day period at 80
    agents twice (18.5 + 20.7 ms against 27.5 ms, EXPLAIN ANALYZE at 10M messages)."""
    meta = KpiDaily._meta
    columns = ", ".join(f'SUM("{meta.get_field(n).column}")' for n in COUNTERS)
    where, params = ["day = ANY(%s)"], [sorted(days)]
    dims = (("channel_id", flt.channel_id), ("agent_id", flt.agent_id), ("team_id", flt.team_id))
    for column, value in dims:
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    sql = (
        f"SELECT GROUPING(day) = 0, day, channel_id, agent_id, team_id, {columns} "  # noqa: S608 - names from the model
        f'FROM "{meta.db_table}" WHERE {" AND ".join(where)} '
        "GROUP BY GROUPING SETS ((day), (channel_id, agent_id, team_id))"
    )
    names = ("by_day", "day", "channel_id", "agent_id", "team_id", *COUNTERS)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# The channel scorecard ----------------------------------------------------

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
