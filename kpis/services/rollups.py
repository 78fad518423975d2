"""The daily KPI rollups (KpiDaily, KpiDayTotal) and their invalidation."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from conversations.models import Case, Message, MessageKind
from kpis.conf import kpis_conf as _conf
from kpis.models import KpiDaily, KpiDayTotal, KpiRollupDay
from kpis.selectors import COUNTERS, daily_counters

logger = logging.getLogger(__name__)


ROLLUP_LOCK_ID = 0x6B706973  # "kpis"


def kpi_rollup_days(*, start: date, end: date, now: datetime | None = None) -> int:
    """Rewrite the daily rollup rows of the past days in [start, end); today stays live.

    Returns the number of rows written. Safe to run again: a day is replaced whole.
    """
    now = now or timezone.now()
    end = min(end, timezone.localdate(now))
    if start >= end:
        return 0
    counters = daily_counters(start=start, end=end, now=now)
    rows = [
        KpiDaily(day=day, channel_id=channel_id, agent_id=agent_id, team_id=team_id, **values)
        for (day, channel_id, agent_id, team_id), values in counters.items()
        if start <= day < end
    ]
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The beat task and a rebuild_kpis may overlap: one writer at a time.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK_ID])
        KpiDaily.objects.filter(day__gte=start, day__lt=end).delete()
        KpiDaily.objects.bulk_create(rows, batch_size=2000)
        _day_totals_write(start=start, end=end, days=days)
        KpiRollupDay.objects.filter(day__gte=start, day__lt=end).delete()
        KpiRollupDay.objects.bulk_create([KpiRollupDay(day=d, computed_at=now) for d in days])
    return len(rows)


def _day_totals_write(*, start: date, end: date, days: list[date]) -> None:
    """The days' KpiDayTotal rows, summed in SQL from the KpiDaily rows just written (the
    same sums a report's per-day GROUP BY makes); a day without activity gets zeros."""
    sums = {
        row.pop("day"): row
        for row in KpiDaily.objects.filter(day__gte=start, day__lt=end)
        .order_by()
        .values("day")
        .annotate(**{name: Sum(name) for name in COUNTERS})
    }
    KpiDayTotal.objects.filter(day__gte=start, day__lt=end).delete()
    KpiDayTotal.objects.bulk_create(
        [KpiDayTotal(day=d, **{n: (sums.get(d) or {}).get(n) or 0 for n in COUNTERS}) for d in days]
    )


def kpi_rollups_unassign(*, agent_id: int | None = None, team_id: int | None = None) -> int:
    """An agent or a team is being deleted: their rollup rows join the unassigned ones.

    Their cases stay (Case.assignee and Case.team are SET_NULL) and the live
    figures count them unassigned; without this the rows would go with the user
    (CASCADE) and the past totals would shrink. Returns the rows folded.
    """
    field = "agent_id" if agent_id is not None else "team_id"
    value = agent_id if agent_id is not None else team_id
    if value is None:
        return 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # one rollup writer at a time (see kpi_rollup_days)
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK_ID])
        rows = list(KpiDaily.objects.select_for_update().filter(**{field: value}))
        for row in rows:
            key = {
                "day": row.day,
                "channel_id": row.channel_id,
                "agent_id": row.agent_id,
                "team_id": row.team_id,
            }
            key[field] = None
            target, _ = KpiDaily.objects.select_for_update().get_or_create(**key)
            for name in COUNTERS:
                setattr(target, name, getattr(target, name) + getattr(row, name))
            target.save()
        KpiDaily.objects.filter(pk__in=[r.pk for r in rows]).delete()
    return len(rows)


def kpi_day_totals_drop() -> int:
    """Forget every per-day total (KpiDayTotal): reports sum the KpiDaily rows instead,
    until kpi_rollup_days writes the days again."""
    return KpiDayTotal.objects.all().delete()[0]


def kpi_rollups_invalidate(*, days) -> int:
    """These days' rollups are out of date (cases folded by a merge): compute them live.

    The hourly task writes them again within its look-back; older days stay live
    (correct, a little slower) until `rebuild_kpis` covers them.
    """
    return KpiRollupDay.objects.filter(day__in=list(days)).delete()[0]


def kpi_rollups_invalidate_case(*, case: Case) -> int:
    """The case moved to another agent or team: the days it counts on are computed live again."""
    days = {timezone.localdate(case.opened_at)}
    if case.resolved_at is not None:
        days.add(timezone.localdate(case.resolved_at))
    calls = Message.objects.filter(case=case, kind__in=(MessageKind.CALL, MessageKind.VOICEMAIL))
    days |= {timezone.localdate(t) for t in calls.values_list("created_at", flat=True)}
    return kpi_rollups_invalidate(days=days)


def kpi_rollup_recent(*, now: datetime | None = None) -> int:
    """Beat task body: the last days again, so late answers and resolutions are counted."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    return kpi_rollup_days(start=today - timedelta(days=_conf("ROLLUP_LOOKBACK_DAYS")), end=today, now=now)
