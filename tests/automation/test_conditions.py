"""Each condition, on facts of a real case (reads only)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from automation.rules.conditions import Facts, conditions_compile
from conversations.models import Label
from kpis.models import BusinessHours
from kpis.models import SurveyAnswer as Answer
from tests.factories import (
    CaseFactory,
    ChannelFactory,
    CustomerFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("UTC"))
MONDAY_22 = datetime(2026, 11, 30, 22, 0, tzinfo=ZoneInfo("UTC"))


@pytest.fixture
def world():
    channel = ChannelFactory(kind="whatsapp", settings={"language": "es"})
    team, agent = TeamFactory(), UserFactory()
    customer = CustomerFactory(attributes={"vip": True, "plan": "gold"})
    case = CaseFactory(thread=customer.thread, origin_channel=channel, team=team, assignee=agent, priority=2)
    case.labels.add(Label.objects.create(name="billing"))
    message = MessageFactory(case=case, channel=channel, body="I want a REFUND for order 123")
    BusinessHours.objects.create(name="Office", weekly={"mon": [["09:00", "17:00"]]})
    return {"channel": channel, "team": team, "agent": agent, "case": case, "message": message}


def check(world, condition, *, now=MONDAY_10, survey=None):
    facts = Facts(case=world["case"], message=world["message"], now=now, survey=survey)
    return conditions_compile([condition], match="all")(facts)


@pytest.mark.parametrize(
    "condition, expected",
    [
        ({"field": "text", "op": "contains", "value": "refund"}, True),
        ({"field": "text", "op": "contains", "value": ["invoice", "order"]}, True),
        ({"field": "text", "op": "not_contains", "value": "refund"}, False),
        ({"field": "text", "op": "matches", "value": r"order \d+"}, True),
        ({"field": "text", "op": "matches", "value": r"^order"}, False),
        ({"field": "channel_kind", "op": "is", "value": "whatsapp"}, True),
        ({"field": "channel_kind", "op": "is_not", "value": ["whatsapp", "sms"]}, False),
        ({"field": "language", "op": "is", "value": "es"}, True),
        ({"field": "language", "op": "is", "value": "en"}, False),
        ({"field": "priority", "op": "gte", "value": 2}, True),
        ({"field": "priority", "op": "lte", "value": 1}, False),
        ({"field": "priority", "op": "is", "value": [2, 3]}, True),
        ({"field": "label", "op": "has", "value": "billing"}, True),
        ({"field": "label", "op": "has_not", "value": "billing"}, False),
        ({"field": "assignee", "op": "is_set"}, True),
        ({"field": "assignee", "op": "is_empty"}, False),
        ({"field": "team", "op": "is_empty"}, False),
        ({"field": "status", "op": "is", "value": "open"}, True),
        ({"field": "customer_attribute", "key": "vip", "op": "is", "value": True}, True),
        ({"field": "customer_attribute", "key": "plan", "op": "contains", "value": "gol"}, True),
        ({"field": "customer_attribute", "key": "churned", "op": "exists"}, False),
        ({"field": "customer_attribute", "key": "churned", "op": "not_exists"}, True),
        ({"field": "case_new", "op": "is", "value": True}, True),
        ({"field": "case_reopened", "op": "is", "value": True}, False),
    ],
)
def test_condition(world, condition, expected):
    assert check(world, condition) is expected


def test_channel_team_assignee_by_id(world):
    assert check(world, {"field": "channel", "op": "is", "value": world["channel"].pk})
    assert check(world, {"field": "team", "op": "is", "value": [world["team"].pk]})
    assert not check(world, {"field": "assignee", "op": "is_not", "value": world["agent"].pk})


def test_business_hours(world):
    condition = {"field": "business_hours", "op": "is", "value": True}
    assert check(world, condition, now=MONDAY_10)
    assert not check(world, condition, now=MONDAY_22)


def test_reopened_case_is_not_new(world):
    world["case"].reopen_count = 1
    assert check(world, {"field": "case_reopened", "op": "is", "value": True})
    assert not check(world, {"field": "case_new", "op": "is", "value": True})


def test_survey_score(world):
    answer = Answer(kind="csat", score=2)
    assert check(world, {"field": "survey_score", "op": "lte", "value": 2}, survey=answer)
    assert not check(world, {"field": "survey_score", "op": "lte", "value": 1}, survey=answer)
    assert check(world, {"field": "survey_kind", "op": "is", "value": "csat"}, survey=answer)
    assert not check(world, {"field": "survey_score", "op": "lte", "value": 5})  # no survey: no match


def test_any_and_all(world):
    yes = {"field": "text", "op": "contains", "value": "refund"}
    no = {"field": "language", "op": "is", "value": "en"}
    facts = Facts(case=world["case"], message=world["message"], now=MONDAY_10)
    assert conditions_compile([yes, no], match="any")(facts)
    assert not conditions_compile([yes, no], match="all")(facts)
    assert conditions_compile([], match="all")(facts)
