"""Business hours, SLA policies, due times and breaches."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conversations import realtime, signals
from conversations.models import Case, CaseStatus
from helpdesk.process_cache import ProcessCache
from kpis.conf import kpis_conf as _conf
from kpis.models import BusinessHours, CaseSla, SlaPolicy

logger = logging.getLogger(__name__)


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    if hhmm in ("24:00", "24:00:00"):
        return datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
    hour, minute = (int(part) for part in hhmm.split(":")[:2])
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def business_hours_validate(*, weekly: dict, holidays: list, time_zone: str) -> None:
    try:
        ZoneInfo(time_zone)
    except Exception as exc:
        raise ValidationError(f"Unknown time zone '{time_zone}'.") from exc
    for name, intervals in (weekly or {}).items():
        if name not in DAY_NAMES:
            raise ValidationError(f"Unknown day '{name}': use {', '.join(DAY_NAMES)}.")
        for interval in intervals:
            if len(interval) != 2 or _clock(date(2000, 1, 3), interval[0], ZoneInfo("UTC")) >= _clock(
                date(2000, 1, 3), interval[1], ZoneInfo("UTC")
            ):
                raise ValidationError(f'{name}: each interval is ["HH:MM", "HH:MM"], start before end.')
    for day in holidays or []:
        try:
            date.fromisoformat(day)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"Holiday '{day}' is not a YYYY-MM-DD date.") from exc


def business_deadline(*, start: datetime, minutes: int, hours: BusinessHours | None) -> datetime:
    """The moment `minutes` of working time have passed after `start`.

    Without business hours (or with no weekly hours at all) the clock runs round the clock.
    """
    if hours is None or not any(hours.weekly.values()):
        return start + timedelta(minutes=minutes)
    tz = ZoneInfo(hours.time_zone)
    holidays = set(hours.holidays or [])
    remaining = timedelta(minutes=minutes)
    cursor = start.astimezone(tz)
    day = cursor.date()
    for _ in range(3 * 366):  # a calendar with a few open hours a year still ends
        if day.isoformat() not in holidays:
            for opens, closes in sorted(hours.weekly.get(DAY_NAMES[day.weekday()], [])):
                # Arithmetic in UTC: wall-clock differences across DST are wrong.
                begin = max(_clock(day, opens, tz), cursor).astimezone(ZoneInfo("UTC"))
                end = _clock(day, closes, tz).astimezone(ZoneInfo("UTC"))
                if begin >= end:
                    continue
                if remaining <= end - begin:
                    return begin + remaining
                remaining -= end - begin
        day += timedelta(days=1)
    raise ValidationError("These business hours leave no working time to meet the SLA.")


def business_hours_now(*, hours: BusinessHours | None, at: datetime) -> tuple[bool, datetime | None]:
    """Whether the team works at `at`, and if not, when it opens next (None: never, or no hours)."""
    if hours is None or not any(hours.weekly.values()):
        return True, None
    tz = ZoneInfo(hours.time_zone)
    holidays = set(hours.holidays or [])
    cursor = at.astimezone(tz)
    day = cursor.date()
    for _ in range(370):
        if day.isoformat() not in holidays:
            for opens, closes in sorted(hours.weekly.get(DAY_NAMES[day.weekday()], [])):
                begin, end = _clock(day, opens, tz), _clock(day, closes, tz)
                if end <= cursor:
                    continue
                if begin <= cursor:
                    return True, None
                return False, begin
        day += timedelta(days=1)
    return False, None


def business_hours_for(*, team_id: int | None) -> BusinessHours | None:
    """The team's hours, else the company's default (the row without a team)."""
    return (
        BusinessHours.objects.filter(team_id=team_id).first() if team_id else None
    ) or BusinessHours.objects.filter(team__isnull=True).first()


# Every new case asks for its policy; the few active ones are cached per
# process (kpis.receivers clears them on save and delete).
sla_policies_cache = ProcessCache(ttl_seconds=lambda: _conf("SLA_POLICY_CACHE_SECONDS"))


def _sla_policies_active() -> list[SlaPolicy]:
    return sla_policies_cache.get(
        "active",
        lambda: list(SlaPolicy.objects.filter(is_active=True).order_by("channel_id", "priority", "pk")),
    )


def sla_policy_for(*, case: Case) -> SlaPolicy | None:
    """The most specific active policy: channel and priority, then channel, then priority, then any."""
    candidates = [
        p
        for p in _sla_policies_active()
        if p.channel_id in (None, case.origin_channel_id) and p.priority in (None, case.priority)
    ]
    best, best_rank = None, -1
    for policy in candidates:
        rank = (2 if policy.channel_id else 0) + (1 if policy.priority is not None else 0)
        if rank > best_rank:
            best, best_rank = policy, rank
    return best


def case_sla_apply(*, case: Case) -> CaseSla | None:
    """Give a case its due times (on open, and again when its team changes before it is answered)."""
    policy = sla_policy_for(case=case)
    if policy is None:
        return None
    hours = None
    if policy.business_hours_only:
        hours = (
            BusinessHours.objects.filter(team_id=case.team_id).first() if case.team_id else None
        ) or BusinessHours.objects.filter(team__isnull=True).first()

    def due(minutes):
        if minutes is None:
            return None
        return business_deadline(start=case.opened_at, minutes=minutes, hours=hours)

    with transaction.atomic():
        sla = CaseSla.objects.select_for_update().filter(case=case).first()
        if sla is None:
            sla = CaseSla(case=case)
        elif case.first_response_at is not None or case.status == CaseStatus.RESOLVED:
            return sla  # what happened is history; due times no longer move
        sla.policy = policy
        sla.first_response_due = due(policy.first_response_minutes)
        sla.resolution_due = due(policy.resolution_minutes)
        sla.save()
    return sla


def _sla_payload(sla: CaseSla, target: str, due: datetime, now: datetime) -> dict:
    return {
        "case": sla.case_id,
        "thread": sla.case.thread_id,
        "assignee": sla.case.assignee_id,
        "team": sla.case.team_id,
        "target": target,
        "due_at": due.isoformat(),
        "seconds_left": int((due - now).total_seconds()),
    }


def sla_check(*, now: datetime | None = None) -> dict:
    """Beat task body: warn before a due time, mark the breach after it; each pushed once."""
    now = now or timezone.now()
    soon = now + timedelta(minutes=_conf("SLA_WARNING_MINUTES"))
    counts = {"warned": 0, "breached": 0}
    open_case = ~Q(case__status=CaseStatus.RESOLVED)
    checks = (
        ("first_response", open_case & Q(case__first_response_at__isnull=True)),
        ("resolution", open_case),
    )
    for target, pending in checks:
        due_field, warned_field, breached_field = (
            f"{target}_due",
            f"{target}_warned_at",
            f"{target}_breached_at",
        )
        for event, condition, stamp in (
            (
                "sla.warning",
                Q(**{f"{due_field}__gt": now, f"{due_field}__lte": soon, warned_field: None}),
                warned_field,
            ),
            ("sla.breached", Q(**{f"{due_field}__lte": now, breached_field: None}), breached_field),
        ):
            slas = list(CaseSla.objects.filter(pending, condition).select_related("case")[:500])
            for sla in slas:
                with transaction.atomic():
                    # The conditional update is the claim: two beat runs never push twice.
                    if not CaseSla.objects.filter(pk=sla.pk, **{stamp: None}).update(**{stamp: now}):
                        continue
                    payload = _sla_payload(sla, target, getattr(sla, due_field), now)
                    transaction.on_commit(
                        lambda e=event, p=payload, c=sla.case: realtime.publish(e, p, case=c)
                    )
                    transaction.on_commit(
                        lambda e=event, c=sla.case, t=target: signals.sla_announce(c, event=e, target=t)
                    )
                counts["warned" if event == "sla.warning" else "breached"] += 1
    return counts
