"""CSAT / NPS / CES surveys: scheduling, sending, links and answers."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy

from conversations import signals
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
from kpis.conf import kpis_conf as _conf
from kpis.models import SURVEY_SCALE, SurveyAnswer, SurveyCampaign, SurveyKind, SurveyRequest

logger = logging.getLogger(__name__)


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
