from datetime import date

import pytest

from kpis.models import SlaPolicy
from kpis.services import case_sla_apply
from tests.factories import ChannelFactory, TeamFactory, UserFactory
from tests.kpis.factories import CallFactory, SurveyAnswerFactory, at, build_case

NOW = at("2026-03-10T12:00")
START, END = date(2026, 3, 2), date(2026, 3, 5)  # [from, to): 2, 3 and 4 March


@pytest.fixture
def now(time_machine):
    time_machine.move_to(NOW, tick=False)
    return NOW


@pytest.fixture
def supervisor(db):
    return UserFactory(username="sup", first_name="Sue", role="supervisors")


@pytest.fixture
def world(db, now):
    """Hand-built cases with known timestamps; expected values are worked out in test_engine.py."""
    email = ChannelFactory(kind="email", name="Email", monthly_cost=310)  # 10 a day in March
    chat = ChannelFactory(kind="api", name="Chat API", monthly_cost=0)
    voice = ChannelFactory(kind="voice", name="Phone", monthly_cost=62)  # 2 a day in March
    a1 = UserFactory(username="ana", first_name="Ana")
    a2 = UserFactory(username="bo", first_name="Bo")
    team = TeamFactory(name="Tier 1")
    SlaPolicy.objects.create(
        name="Email 30 min", channel=email, first_response_minutes=30, business_hours_only=False
    )
    c = {}
    # Answered in 10 min with one message, resolved the same day: FCR.
    c["c1"] = build_case(
        channel=email,
        agent=a1,
        team=team,
        opened="2026-03-02T09:00",
        replies=("2026-03-02T09:10",),
        resolved="2026-03-02T10:00",
    )
    # A bot line and a note before the first agent reply: neither counts.
    c["c2"] = build_case(
        channel=email,
        agent=a1,
        team=team,
        opened="2026-03-02T11:00",
        bot=("2026-03-02T11:01",),
        notes=("2026-03-02T11:02",),
        replies=("2026-03-02T11:20", "2026-03-02T11:30"),
        resolved="2026-03-03T11:00",
    )
    # No response at all, resolved: abandoned; no TME, no TMA, not in FCR.
    c["c3"] = build_case(
        channel=email,
        agent=a2,
        opened="2026-03-03T08:00",
        bot=("2026-03-03T08:01",),
        resolved="2026-03-03T09:00",
    )
    # One agent message but reopened once (last resolution on the 4th): not FCR.
    c["c4"] = build_case(
        channel=chat,
        agent=a2,
        opened="2026-03-03T10:00",
        replies=("2026-03-03T10:05",),
        resolved="2026-03-04T10:00",
        reopen_count=1,
    )
    # Opened before the period, resolved in it: counts for resolution, TMA and FCR only.
    c["c5"] = build_case(
        channel=chat,
        agent=a1,
        opened="2026-03-01T22:00",
        replies=("2026-03-01T22:30",),
        resolved="2026-03-02T08:00",
    )
    # Never answered, still open six days later: expired, abandoned.
    c["c6"] = build_case(channel=email, opened="2026-03-04T09:00")
    # Answered exactly at its SLA due time, still open.
    c["c7"] = build_case(channel=email, agent=a1, opened="2026-03-04T20:00", replies=("2026-03-04T20:30",))
    # After the period: counts nowhere.
    c["c8"] = build_case(
        channel=email,
        agent=a1,
        opened="2026-03-05T09:00",
        replies=("2026-03-05T09:01",),
        resolved="2026-03-05T10:00",
    )
    # Phone: an answered call (talk 120 s); a case with an unanswered call, a call back, an outbound call.
    c["v1"] = build_case(
        channel=voice,
        agent=a1,
        opened="2026-03-02T14:00",
        resolved="2026-03-02T14:05",
        first_call={
            "direction": "inbound",
            "call_status": "completed",
            "answered": True,
            "talk_seconds": 120,
        },
    )
    c["v2"] = build_case(
        channel=voice,
        agent=a2,
        opened="2026-03-03T15:00",
        resolved="2026-03-03T15:20",
        first_call={"direction": "inbound", "call_status": "no-answer", "answered": False},
    )
    CallFactory(
        case=c["v2"],
        created_at=at("2026-03-03T15:10"),
        meta={"direction": "inbound", "call_status": "completed", "answered": True, "talk_seconds": 300},
    )
    CallFactory(
        case=c["v2"],
        created_at=at("2026-03-03T15:15"),
        direction="out",
        author="agent",
        meta={"direction": "outbound", "call_status": "completed", "answered": True, "talk_seconds": 60},
    )
    # The agent's outbound call is an agent message: as the core does, it is the case's first response.
    c["v2"].first_response_at = at("2026-03-03T15:15")
    c["v2"].save(update_fields=["first_response_at"])
    # A call still ringing is not over: it counts nowhere yet.
    CallFactory(
        case=c["v2"],
        created_at=at("2026-03-04T16:00"),
        meta={"direction": "inbound", "call_status": "ringing"},
    )
    for key in ("c1", "c2", "c3", "c6", "c7", "c8"):
        case_sla_apply(case=c[key])
    answers = [
        ("c1", "csat", 5, "2026-03-02T12:00"),
        ("c2", "csat", 3, "2026-03-03T12:00"),
        ("c4", "csat", 4, "2026-03-04T12:00"),
        ("c1", "nps", 10, "2026-03-02T12:00"),
        ("c2", "nps", 9, "2026-03-03T12:00"),
        ("c4", "nps", 8, "2026-03-04T12:00"),
        ("c5", "nps", 3, "2026-03-02T12:00"),
        ("c1", "ces", 6, "2026-03-02T12:00"),
        ("c2", "ces", 7, "2026-03-03T12:00"),
        ("c4", "ces", 2, "2026-03-04T12:00"),
        ("c8", "csat", 1, "2026-03-05T12:00"),  # after the period
    ]
    for key, kind, score, when in answers:
        SurveyAnswerFactory(case=c[key], kind=kind, score=score, answered_at=at(when))
    return {"email": email, "chat": chat, "voice": voice, "a1": a1, "a2": a2, "team": team, **c}
