import csv
import io

import pytest

from kpis.selectors import kpi_report
from kpis.services import kpi_rollup_days
from tests.factories import UserFactory
from tests.kpis.conftest import END, START
from tests.kpis.factories import build_case

pytestmark = pytest.mark.django_db

URL = "/api/v1/kpis/"
PERIOD = {"from": "2026-03-02", "to": "2026-03-05"}


def test_supervisor_gets_every_kpi_per_the_contract(client, world, supervisor):
    client.force_login(supervisor)
    response = client.get(URL, PERIOD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"from", "to", "totals", "by_channel", "by_agent", "by_team", "series"}
    assert (body["from"], body["to"]) == ("2026-03-02", "2026-03-05")
    assert body["totals"]["volume"] == 8 and body["totals"]["tme_seconds"] == 960.0
    assert body["totals"]["sla_compliance"] == 0.6 and body["totals"]["nps"] == 0.25
    assert set(body["by_channel"]) == {world["email"].key, world["chat"].key, world["voice"].key}
    assert set(body["by_agent"]) == {str(world["a1"].pk), str(world["a2"].pk)}
    assert [d["date"] for d in body["series"]] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert body == kpi_report(start=START, end=END)


def test_filters_by_channel_key_agent_and_team(client, world, supervisor):
    client.force_login(supervisor)
    email = client.get(URL, {**PERIOD, "channel": world["email"].key}).json()
    assert email["totals"]["volume"] == 5 and list(email["by_channel"]) == [world["email"].key]
    assert client.get(URL, {**PERIOD, "agent": world["a1"].pk}).json()["totals"]["volume"] == 4
    assert client.get(URL, {**PERIOD, "team": world["team"].pk}).json()["totals"]["volume"] == 2


@pytest.mark.parametrize(
    "params, message",
    [
        ({"from": "2026-03-05", "to": "2026-03-02"}, "before"),
        ({"from": "2026-3-2x", "to": "2026-03-05"}, "valid date"),
        ({"from": "2025-01-01", "to": "2026-03-05"}, "at most"),
        ({**PERIOD, "channel": "no-such-channel"}, "No channel"),
        ({**PERIOD, "agent": "ana"}, "whole number"),
    ],
)
def test_bad_parameters_are_400_with_the_reason(client, supervisor, params, message):
    client.force_login(supervisor)
    response = client.get(URL, params)
    assert response.status_code == 400
    assert message in str(response.json()["errors"])


def test_agents_are_refused_and_anonymous_is_challenged(client, world):
    assert client.get(URL, PERIOD).status_code == 401
    client.force_login(UserFactory(username="plain-agent"))
    assert client.get(URL, PERIOD).status_code == 403


def test_admins_and_superusers_may_read(client, world):
    client.force_login(UserFactory(username="boss", role="admins"))
    assert client.get(URL, PERIOD).status_code == 200
    root = UserFactory(username="root", is_superuser=True)
    client.force_login(root)
    assert client.get(URL, PERIOD).status_code == 200


def test_basic_auth_for_api_clients(client, world, supervisor):
    import base64

    token = base64.b64encode(b"sup:pass-word-123").decode()
    response = client.get(URL, PERIOD, HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 200


def test_query_count_does_not_grow_with_data(client, world, supervisor, django_assert_max_num_queries):
    client.force_login(supervisor)
    kpi_rollup_days(start=START, end=END)
    with django_assert_max_num_queries(13):
        assert client.get(URL, {"from": "2026-03-01", "to": "2026-03-11"}).status_code == 200
    for i in range(30):
        agent = UserFactory(username=f"extra{i}")
        build_case(
            channel=world["chat"],
            agent=agent,
            opened=f"2026-03-0{2 + i % 3}T10:{i:02d}",
            replies=(f"2026-03-0{2 + i % 3}T11:{i:02d}",),
            resolved=f"2026-03-0{2 + i % 3}T12:{i:02d}",
        )
        build_case(channel=world["email"], opened=f"2026-03-10T0{i % 10}:{i:02d}")  # today: live
    kpi_rollup_days(start=START, end=END)
    with django_assert_max_num_queries(13):
        body = client.get(URL, {"from": "2026-03-01", "to": "2026-03-11"}).json()
    assert body["totals"]["volume"] == 8 + 30 + 30 + 2  # + c5 on the 1st and c8 on the 5th


def test_dashboard_csv_matches_the_api(client, world, supervisor):
    client.force_login(supervisor)
    response = client.get("/dashboard/channels.csv", PERIOD)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="kpis-channels-2026-03-02-2026-03-05.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    email = next(r for r in rows if r["id"] == world["email"].key)
    assert email["channel"] == "Email" and email["volume"] == "5" and email["tme_seconds"] == "1200.0"
    agents = list(csv.DictReader(io.StringIO(client.get("/dashboard/agents.csv", PERIOD).content.decode())))
    assert {r["agent"] for r in agents} == {"Ana", "Bo"}
    assert client.get("/dashboard/nothing.csv", PERIOD).status_code == 404
