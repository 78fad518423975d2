"""Writes of the kpis app: rollups, SLA due times and breaches, surveys and their answers."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import OuterRef, Q, Subquery, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy

from conversations import realtime, signals
from conversations.models import (
    Author,
    Case,
    CaseStatus,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
)
from helpdesk.languages import customer_language, supported_language
from helpdesk.process_cache import ProcessCache
from kpis.models import (
    SURVEY_SCALE,
    BusinessHours,
    CaseSla,
    KpiDaily,
    KpiDayTotal,
    KpiRollupDay,
    SlaPolicy,
    SurveyAnswer,
    SurveyCampaign,
    SurveyKind,
    SurveyRequest,
)
from kpis.selectors import COUNTERS, daily_counters

logger = logging.getLogger(__name__)


def _conf(name):
    return settings.KPIS[name]


# Rollups -------------------------------------------------------------------

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


# Business hours and SLA ----------------------------------------------------

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


# Surveys -------------------------------------------------------------------

DEFAULT_SURVEY_TEXT = {
    SurveyKind.CSAT: gettext_lazy(
        "How satisfied are you with the help you got? "
        "Reply with a number from 1 (very unhappy) to 5 (very happy)."
    ),
    SurveyKind.NPS: gettext_lazy(
        "How likely are you to recommend us to a friend or colleague? "
        "Reply with a number from 0 (not at all) to 10 (extremely likely)."
    ),
    SurveyKind.CES: gettext_lazy(
        "How easy was it to get your question solved? "
        "Reply with a number from 1 (very hard) to 7 (very easy)."
    ),
}
SURVEY_DEFAULTS = {
    "enabled": False,
    "on_resolve": True,
    "delay_minutes": 0,
    "cooldown_days": 30,
    "link": False,
}

_SCORE = re.compile(r"^\s*(\d{1,2})\s*(?:/\s*(\d{1,2})\s*)?[.!]*\s*$")


def survey_config(*, channel, kind: str) -> dict:
    """The channel's survey options: Channel.settings["survey"][kind] over the defaults."""
    stored = ((channel.settings if channel else None) or {}).get("survey", {}).get(kind, {})
    return {**SURVEY_DEFAULTS, "text": DEFAULT_SURVEY_TEXT[kind], **stored}


def survey_score_parse(*, kind: str, text: str) -> int | None:
    """A reply that is a valid score on the survey's scale ("4", "4/5", " 5 "), else None."""
    match = _SCORE.match(text or "")
    if not match:
        return None
    low, high = SURVEY_SCALE[kind]
    score = int(match.group(1))
    if match.group(2) is not None and int(match.group(2)) != high:
        return None
    return score if low <= score <= high else None


def survey_link_token(*, request: SurveyRequest) -> str:
    return signing.dumps(request.pk, salt="kpis.survey-link", compress=True)


def survey_request_from_token(*, token: str) -> SurveyRequest:
    """The request a signed link is for; ValidationError when forged or too old."""
    try:
        pk = signing.loads(
            token, salt="kpis.survey-link", max_age=timedelta(days=_conf("SURVEY_LINK_MAX_AGE_DAYS"))
        )
    except signing.SignatureExpired as exc:
        raise ValidationError(gettext("This survey link has expired.")) from exc
    except signing.BadSignature as exc:
        raise ValidationError(gettext("This survey link is not valid.")) from exc
    request = SurveyRequest.objects.select_related("customer", "channel").filter(pk=pk).first()
    if request is None:
        raise ValidationError(gettext("This survey link is not valid."))
    return request


def survey_link_url(*, request: SurveyRequest) -> str:
    return f"{settings.PUBLIC_BASE_URL}/survey/{survey_link_token(request=request)}/"


def _survey_channel(case: Case):
    """The channel the case was handled on: where the customer last wrote on it."""
    latest = (
        Message.objects.filter(case=case, direction=Direction.IN, channel__isnull=False)
        .select_related("channel")
        .order_by("-created_at", "-id")
        .first()
    )
    return latest.channel if latest else case.origin_channel


def _in_cooldown(*, customer_id: int, kind: str, days: int, now: datetime) -> bool:
    return (
        SurveyRequest.objects.filter(
            customer_id=customer_id, kind=kind, created_at__gte=now - timedelta(days=days)
        )
        .exclude(status=SurveyRequest.Status.FAILED)
        .exists()
    )


def surveys_schedule_for_resolved(*, case: Case, now: datetime | None = None) -> list[SurveyRequest]:
    """A case was resolved: queue the surveys its channel asks for, within each one's cool-down."""
    from kpis.tasks import survey_send

    now = now or timezone.now()
    case = Case.objects.select_related("thread", "origin_channel").get(pk=case.pk)
    if case.status != CaseStatus.RESOLVED:
        return []
    channel = _survey_channel(case)
    if channel is None:
        return []
    answered = (
        Message.objects.filter(case=case, author=Author.AGENT, direction=Direction.OUT)
        .exclude(kind__in=(MessageKind.NOTE, MessageKind.SYSTEM))
        # A reply that failed for good is no answer to rate; one still on its way is
        # (an agent often replies and resolves at once, before the worker sent it).
        .exclude(status=DeliveryStatus.FAILED)
        .exists()
    )
    if not answered:
        return []  # nobody talked to the customer: there is nothing to rate
    created = []
    for kind in SurveyKind.values:
        conf = survey_config(channel=channel, kind=kind)
        if not conf["enabled"] or not conf["on_resolve"]:
            continue
        if SurveyRequest.objects.filter(case=case, kind=kind).exists():
            continue  # a reopened and re-resolved case is asked once
        if _in_cooldown(customer_id=case.thread.customer_id, kind=kind, days=conf["cooldown_days"], now=now):
            continue
        with transaction.atomic():
            request = SurveyRequest.objects.create(
                kind=kind,
                case=case,
                customer_id=case.thread.customer_id,
                channel=channel,
                agent_id=case.assignee_id,
                team_id=case.team_id,
                created_at=now,
                send_after=now + timedelta(minutes=conf["delay_minutes"]),
            )
            if not conf["delay_minutes"]:
                transaction.on_commit(lambda pk=request.pk: survey_send.delay(pk))
        created.append(request)
    return created


def survey_language(*, request: SurveyRequest) -> str:
    """The language a survey speaks to its customer in (helpdesk/languages.py)."""
    return customer_language(
        customer=request.customer if request.customer_id else None, channel=request.channel
    )


def _survey_text(text, language: str) -> str:
    # A channel may word its survey per language: {"es": "...", "en": "..."}.
    if isinstance(text, dict):
        by_language = {supported_language(code): value for code, value in text.items()}
        text = by_language.get(language) or next(iter(text.values()), "")
    return str(text)


def _survey_body(request: SurveyRequest, conf: dict) -> str:
    language = survey_language(request=request)
    with translation.override(language):
        text = _survey_text(conf["text"], language)
        if conf["link"] and "{link}" not in text:
            text += gettext(" Or answer here: {link}")
    name = request.customer.first_name if request.customer_id else ""
    link = survey_link_url(request=request)
    return text.replace("{link}", link).replace("{name}", name).strip()


def survey_request_send(*, request_id: int, now: datetime | None = None) -> SurveyRequest | None:
    """Send one due survey on its channel as a bot message; a refusal is kept as the reason."""
    from conversations.services import send_automatic

    now = now or timezone.now()
    claimed = SurveyRequest.objects.filter(
        pk=request_id, status=SurveyRequest.Status.SCHEDULED, send_after__lte=now
    ).update(status=SurveyRequest.Status.SENDING)
    if not claimed:
        return None
    request = SurveyRequest.objects.select_related("case", "case__thread", "channel", "customer").get(
        pk=request_id
    )
    case = request.case
    if request.campaign_id is None and case.status != CaseStatus.RESOLVED:
        request.status = SurveyRequest.Status.FAILED
        request.error = "The case was reopened before the survey went out."
        request.save(update_fields=["status", "error"])
        return request
    conf = survey_config(channel=request.channel, kind=request.kind)
    low, high = SURVEY_SCALE[request.kind]
    try:
        with transaction.atomic():
            message = send_automatic(
                case=case,
                body=_survey_body(request, conf),
                channel=request.channel,
                meta={
                    "survey": {"kind": request.kind, "request": request.pk},
                    "quick_replies": [str(n) for n in range(low, high + 1)],
                },
            )
            request.status = SurveyRequest.Status.SENT
            request.sent_at = message.created_at
            request.message = message
            request.case_resolved_at = case.resolved_at
            request.case_reopen_count = case.reopen_count
            request.save(
                update_fields=["status", "sent_at", "message", "case_resolved_at", "case_reopen_count"]
            )
    except ValidationError as exc:
        request.status = SurveyRequest.Status.FAILED
        request.error = "; ".join(exc.messages)
        request.save(update_fields=["status", "error"])
    return request


def surveys_send_due(*, now: datetime | None = None) -> int:
    """Beat task body: send the delayed surveys whose time has come."""
    now = now or timezone.now()
    due = SurveyRequest.objects.filter(status=SurveyRequest.Status.SCHEDULED, send_after__lte=now)
    sent = 0
    for pk in list(due.values_list("pk", flat=True)[:500]):
        if survey_request_send(request_id=pk, now=now) is not None:
            sent += 1
    return sent


def survey_answer_record(
    *,
    request: SurveyRequest,
    score: int,
    via: str,
    message: Message | None = None,
    now: datetime | None = None,
) -> SurveyAnswer:
    """Store an answer once; a survey reply that reopened its case puts the case back as resolved."""
    now = now or timezone.now()
    low, high = SURVEY_SCALE[request.kind]
    if not low <= score <= high:
        raise ValidationError(
            gettext("The score must be between %(low)s and %(high)s.") % {"low": low, "high": high}
        )
    with transaction.atomic():
        if not SurveyRequest.objects.filter(pk=request.pk, status=SurveyRequest.Status.SENT).update(
            status=SurveyRequest.Status.ANSWERED
        ):
            raise ValidationError(gettext("This survey has already been answered. Thank you!"))
        answer = SurveyAnswer.objects.create(
            request=request,
            kind=request.kind,
            score=score,
            case_id=request.case_id,
            customer_id=request.customer_id,
            channel_id=request.channel_id,
            agent_id=request.agent_id,
            team_id=request.team_id,
            message=message,
            via=via,
            answered_at=message.created_at if message else now,
        )
        if message is not None:
            _undo_reopen_by_answer(request=request, message=message)
        signals.domain_event_emit(
            "survey.answered", {"survey": _answer_data(answer)}, f"case:{answer.case_id}"
        )
        transaction.on_commit(lambda: signals.survey_announce(answer))
    return answer


def _answer_data(answer: SurveyAnswer) -> dict:
    return {
        "id": answer.pk,
        "request_id": answer.request_id,
        "kind": answer.kind,
        "score": answer.score,
        "case_id": answer.case_id,
        "customer_id": answer.customer_id,
        "channel_id": answer.channel_id,
        "agent_id": answer.agent_id,
        "team_id": answer.team_id,
        "message_id": answer.message_id,
        "via": answer.via,
        "answered_at": answer.answered_at.isoformat(),
    }


def _undo_reopen_by_answer(*, request: SurveyRequest, message: Message) -> None:
    # A score is not a new question: the case it reopened goes back to how the
    # survey found it, so FCR and the inbox are not disturbed by the survey.
    if request.case_resolved_at is None:
        return
    case = Case.objects.select_for_update().get(pk=request.case_id)
    if case.status != CaseStatus.OPEN or case.reopen_count != request.case_reopen_count + 1:
        return
    others = (
        Message.objects.filter(case=case, direction=Direction.IN, created_at__gt=request.sent_at)
        .exclude(pk=message.pk)
        .exists()
    )
    if others:
        return
    case.status = CaseStatus.RESOLVED
    case.resolved_at = request.case_resolved_at
    case.reopen_count = request.case_reopen_count
    case.waiting_since = None
    case.save(update_fields=["status", "resolved_at", "reopen_count", "waiting_since", "updated_at"])
    signals.case_event_emit("case.resolved", case, customer_id=request.customer_id)
    transaction.on_commit(lambda: signals.case_announce(case, change=CaseStatus.RESOLVED))


def survey_answer_from_message(*, message: Message) -> SurveyAnswer | None:
    """A customer's message on a case with a survey waiting: a valid score is the answer.

    Anything else ("excellent") stays a normal message and counts for nothing.
    """
    if message.direction != Direction.IN or message.author != Author.CUSTOMER or message.case_id is None:
        return None
    if not _SCORE.match(message.body or ""):
        return None  # most messages are not a number: no query on the hot inbound path
    window = timedelta(hours=_conf("SURVEY_ANSWER_WINDOW_HOURS"))
    request = (
        SurveyRequest.objects.filter(
            case_id=message.case_id,
            status=SurveyRequest.Status.SENT,
            sent_at__lte=message.created_at,
            sent_at__gte=message.created_at - window,
        )
        .order_by("-sent_at", "-pk")
        .first()
    )
    if request is None:
        return None
    score = survey_score_parse(kind=request.kind, text=message.body)
    if score is None:
        return None
    try:
        return survey_answer_record(
            request=request, score=score, via=SurveyAnswer.Via.MESSAGE, message=message
        )
    except ValidationError:
        return None


def survey_campaign_run(*, campaign: SurveyCampaign, now: datetime | None = None) -> list[SurveyRequest]:
    """Survey a random sample of customers whose latest case was resolved lately."""
    from kpis.tasks import survey_send

    now = now or timezone.now()
    conf_channel = campaign.channel
    recent = Case.objects.filter(
        status=CaseStatus.RESOLVED, resolved_at__gte=now - timedelta(days=campaign.lookback_days)
    )
    if campaign.channel_id:
        recent = recent.filter(origin_channel_id=campaign.channel_id)
    cooldown = survey_config(channel=conf_channel, kind=campaign.kind)["cooldown_days"]
    surveyed = SurveyRequest.objects.filter(
        kind=campaign.kind, created_at__gte=now - timedelta(days=cooldown)
    ).exclude(status=SurveyRequest.Status.FAILED)
    # The latest recent resolution of each customer not surveyed lately, in random order.
    latest = recent.filter(thread_id=OuterRef("thread_id")).order_by("-resolved_at", "-pk").values("pk")[:1]
    sample = list(
        recent.exclude(thread__customer_id__in=surveyed.values("customer_id"))
        .filter(pk=Subquery(latest))
        .select_related("thread")
        .order_by("?")[: campaign.sample_size]
    )
    with transaction.atomic():
        requests = SurveyRequest.objects.bulk_create(
            [
                SurveyRequest(
                    kind=campaign.kind,
                    case=case,
                    customer_id=case.thread.customer_id,
                    channel=_survey_channel(case),
                    agent_id=case.assignee_id,
                    team_id=case.team_id,
                    campaign=campaign,
                    created_at=now,
                    send_after=now,
                )
                for case in sample
            ]
        )
        SurveyCampaign.objects.filter(pk=campaign.pk).update(last_run_at=now)
        for request in requests:
            transaction.on_commit(lambda pk=request.pk: survey_send.delay(pk))
    return requests


def survey_campaigns_run_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    runs = 0
    for campaign in SurveyCampaign.objects.filter(is_active=True).select_related("channel"):
        if campaign.last_run_at and campaign.last_run_at > now - timedelta(days=campaign.every_days):
            continue
        survey_campaign_run(campaign=campaign, now=now)
        runs += 1
    return runs
