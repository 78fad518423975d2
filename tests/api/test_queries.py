"""Every list endpoint runs the same number of queries for 1 row as for 50."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import CannedResponse, Label, Team
from tests.api.conftest import client_for
from tests.factories import (
    CaseFactory,
    ChannelFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
)
from tests.kpis.factories import SurveyAnswerFactory

pytestmark = pytest.mark.django_db


def _label(state):
    if "label" not in state:
        state["label"] = Label.objects.create(name="vip")
    return state["label"]


def _customers(org, n, state):
    for _ in range(n):
        customer = CustomerFactory()
        IdentityFactory(customer=customer)
        IdentityFactory(customer=customer, kind="phone", address=f"+1415555{customer.pk:04d}")
        case = CaseFactory(thread=customer.thread, team=org["billing"])
        case.labels.add(_label(state))
    return "/api/v1/customers/", {}


def _search(org, n, state):
    _customers(org, n, state)
    return "/api/v1/customers/", {"q": "example.com"}


def _timeline(org, n, state):
    if "case" not in state:
        state["case"] = CaseFactory(thread=CustomerFactory().thread, team=org["billing"])
    for i in range(n):
        kind = "note" if i % 3 == 0 else "text"
        MessageFactory(
            case=state["case"], kind=kind, channel=ChannelFactory() if i % 2 else state["case"].origin_channel
        )
    return f"/api/v1/customers/{state['case'].thread.customer_id}/timeline/", {}


def _cases(org, n, state):
    for _ in range(n):
        case = CaseFactory(team=org["billing"], assignee=org["ana"])
        case.labels.add(_label(state), Label.objects.create(name=f"l{case.pk}"))
    return "/api/v1/cases/", {}


def _teams(org, n, state):
    for _ in range(n):
        team = TeamFactory()
        team.members.add(UserFactory())
    return "/api/v1/teams/", {}


def _agents(org, n, state):
    for _ in range(n):
        user = UserFactory()
        Team.objects.first().members.add(user)
    return "/api/v1/agents/", {}


def _labels(org, n, state):
    for _ in range(n):
        Label.objects.create(name=f"label-{Label.objects.count()}")
    return "/api/v1/labels/", {}


def _canned(org, n, state):
    for _ in range(n):
        k = CannedResponse.objects.count()
        CannedResponse.objects.create(
            shortcut=f"c{k}", title="t", body="b", team=org["billing"] if k % 2 else None
        )
    return "/api/v1/canned-responses/", {}


def _channels(org, n, state):
    for _ in range(n):
        ChannelFactory()
    return "/api/v1/channels/", {}


def _surveys(org, n, state):
    for _ in range(n):
        SurveyAnswerFactory(case=CaseFactory(team=org["billing"]), answered_at=timezone.now())
    return "/api/v1/survey-answers/", {}


BUILDERS = {
    "customers": _customers,
    "customer search": _search,
    "timeline": _timeline,
    "cases": _cases,
    "teams": _teams,
    "agents": _agents,
    "labels": _labels,
    "canned responses": _canned,
    "channels": _channels,
    "survey answers": _surveys,
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_query_count_is_flat(org, name, django_assert_max_num_queries):
    user = UserFactory(username="root", role="admins") if name == "channels" else org["ana"]
    client = client_for(user)
    state = {}
    url, params = BUILDERS[name](org, 1, state)
    with CaptureQueriesContext(connection) as one:
        response = client.get(url, params)
    assert response.status_code == 200 and len(response.json()["results"]) >= 1
    BUILDERS[name](org, 49, state)
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(url, params)
    assert len(response.json()["results"]) >= 50, name
