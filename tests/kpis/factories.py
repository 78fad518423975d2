"""Hand-built cases with known timestamps for the KPI tests (factory_boy over the real models)."""

from datetime import datetime, timedelta

import factory

from conversations.models import Author, CaseStatus, DeliveryStatus, Direction, MessageKind
from kpis.models import SurveyAnswer, SurveyRequest
from tests.factories import CaseFactory, MessageFactory


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + "+00:00")


def build_case(
    *,
    channel,
    opened: str,
    agent=None,
    team=None,
    replies: tuple[str, ...] = (),
    resolved: str | None = None,
    reopen_count: int = 0,
    bot: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
    first_call: dict | None = None,
    priority: int = 1,
):
    """A case as the core leaves it: the opening inbound message, agent replies, bot lines, notes."""
    opened_at = at(opened)
    replies_at = [at(r) for r in replies]
    case = CaseFactory(
        origin_channel=channel,
        opened_at=opened_at,
        assignee=agent,
        team=team,
        priority=priority,
        first_response_at=min(replies_at) if replies_at else None,
        status=CaseStatus.RESOLVED if resolved else CaseStatus.OPEN,
        resolved_at=at(resolved) if resolved else None,
        reopen_count=reopen_count,
    )
    if first_call is not None:
        CallFactory(case=case, created_at=opened_at, meta=first_call)
    else:
        MessageFactory(case=case, created_at=opened_at)
    for when in replies_at:
        # The core counts a reply once its provider accepted it: these were sent.
        MessageFactory(
            case=case,
            created_at=when,
            sent_at=when,
            status=DeliveryStatus.SENT,
            direction=Direction.OUT,
            author=Author.AGENT,
            author_user=agent,
        )
    for when in bot:
        MessageFactory(case=case, created_at=at(when), direction=Direction.OUT, author=Author.BOT)
    for when in notes:
        MessageFactory(
            case=case,
            created_at=at(when),
            direction=Direction.OUT,
            author=Author.AGENT,
            author_user=agent,
            kind=MessageKind.NOTE,
            channel=None,
        )
    return case


class CallFactory(MessageFactory):
    """A call message with the meta keys docs/contracts.md defines for the voice channel."""

    kind = MessageKind.CALL
    body = "Phone call"
    meta = factory.LazyFunction(
        lambda: {"direction": "inbound", "call_status": "completed", "answered": True, "talk_seconds": 60}
    )


class SurveyRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SurveyRequest

    kind = "csat"
    case = factory.SubFactory(CaseFactory)
    customer = factory.LazyAttribute(lambda o: o.case.thread.customer)
    channel = factory.LazyAttribute(lambda o: o.case.origin_channel)
    agent = factory.LazyAttribute(lambda o: o.case.assignee)
    team = factory.LazyAttribute(lambda o: o.case.team)
    status = SurveyRequest.Status.SENT
    created_at = factory.LazyAttribute(lambda o: o.sent_at or o.case.opened_at)
    send_after = factory.LazyAttribute(lambda o: o.created_at)
    sent_at = None


class SurveyAnswerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SurveyAnswer

    request = factory.SubFactory(
        SurveyRequestFactory,
        case=factory.SelfAttribute("..case"),
        kind=factory.SelfAttribute("..kind"),
        status=SurveyRequest.Status.ANSWERED,
        created_at=factory.LazyAttribute(lambda o: o.factory_parent.answered_at - timedelta(hours=1)),
    )
    kind = "csat"
    score = 5
    case = factory.SubFactory(CaseFactory)
    customer = factory.LazyAttribute(lambda o: o.case.thread.customer)
    channel = factory.LazyAttribute(lambda o: o.case.origin_channel)
    agent = factory.LazyAttribute(lambda o: o.case.assignee)
    team = factory.LazyAttribute(lambda o: o.case.team)
    via = SurveyAnswer.Via.MESSAGE
