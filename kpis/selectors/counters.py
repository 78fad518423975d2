"""Counters per (day, channel, agent, team) from raw cases, calls and survey answers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

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

from conversations.models import (
    REACHED_CUSTOMER,
    Author,
    Case,
    CaseStatus,
    Direction,
    Message,
    MessageKind,
)
from kpis.conf import kpis_conf as _conf
from kpis.models import KpiDaily, SurveyAnswer

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
