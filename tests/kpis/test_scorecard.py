"""The channel scorecard: figures and verdicts on a fixed scenario, its page, CSV and API."""

import csv
import io
import re
from datetime import datetime, timedelta

import pytest

from conversations.models import Direction, Message
from kpis.selectors import channel_scorecard, kpi_report
from kpis.services import kpi_rollup_days
from tests.factories import ChannelFactory, UserFactory
from tests.kpis.conftest import END, START
from tests.kpis.factories import SurveyAnswerFactory, at, build_case

pytestmark = pytest.mark.django_db

PERIOD = {"from": "2026-03-02", "to": "2026-03-05"}  # three days of March: a 31-day month
API = "/api/v1/kpis/channels/"


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")


def _cases(channel, n, *, answered=None, csat=(), first="2026-03-02T09:00"):
    """n cases an hour apart: answered after 10 minutes (unless not in `answered`), resolved after 1 h."""
    cases = []
    for i in range(n):
        opened = at(first) + timedelta(hours=i)
        replied = answered is None or i in answered
        case = build_case(
            channel=channel,
            opened=_iso(opened),
            replies=(_iso(opened + timedelta(minutes=10)),) if replied else (),
            resolved=_iso(opened + timedelta(hours=1)),
        )
        cases.append(case)
    for case, score in zip(cases, csat, strict=False):
        SurveyAnswerFactory(
            case=case, kind="csat", score=score, answered_at=case.opened_at + timedelta(hours=2)
        )
    return cases


@pytest.fixture
def scenario(db, now):
    """Three channels, 21 cases in the period:

    - Email: 10 cases, 30 EUR (310 a month), CSAT 9/10 -> 3.00 a case: grow.
    - WhatsApp: 6 cases, no monthly cost, 0.50 a message; 6 inbound + 5 accepted replies are
      billed (a sixth reply failed) -> 5.50, 0.92 a case, CSAT 4/5 = 80 %: keep.
    - Telegram: 5 cases, 60 EUR (620 a month), 2 never answered, CSAT 1/3 -> 12.00 a case: review.
    Email also had 2 cases in the three days before: its volume trend is +400 %.
    """
    email = ChannelFactory(kind="email", name="Email", monthly_cost=310)
    whatsapp = ChannelFactory(
        kind="whatsapp", name="WhatsApp", monthly_cost=0, settings={"cost_per_message": "0.5"}
    )
    telegram = ChannelFactory(kind="telegram", name="Telegram", monthly_cost=620)
    _cases(email, 10, csat=(5, 5, 4, 4, 5, 5, 4, 5, 4, 2))
    _cases(email, 2, first="2026-02-27T09:00")
    wa = _cases(whatsapp, 6, csat=(5, 4, 4, 5, 1))
    replies = Message.objects.filter(case__in=wa, direction=Direction.OUT).order_by("created_at")
    ids = list(replies.values_list("pk", flat=True))
    Message.objects.filter(pk__in=ids[:5]).update(status="delivered")
    Message.objects.filter(pk=ids[5]).update(status="failed")
    _cases(telegram, 5, answered={0, 1, 2}, csat=(5, 2, 3))
    return {"email": email, "whatsapp": whatsapp, "telegram": telegram}


def test_figures_and_verdicts_on_a_fixed_scenario(scenario):
    card = channel_scorecard(start=START, end=END)
    assert card["currency"] == "EUR" and card["total_volume"] == 21
    rows = {r["name"]: r for r in card["channels"]}
    assert [r["name"] for r in card["channels"]] == ["Email", "WhatsApp", "Telegram"]  # ranked by volume
    assert [r["rank"] for r in card["channels"]] == [1, 2, 3]

    email, wa, tg = rows["Email"], rows["WhatsApp"], rows["Telegram"]
    assert (email["volume"], email["previous_volume"], email["volume_change"]) == (10, 2, 4.0)
    assert email["share"] == pytest.approx(10 / 21)
    assert email["cost"] == 30.0 and email["cost_per_case"] == pytest.approx(3.0)
    assert email["tme_seconds"] == 600 and email["tma_seconds"] == 3000 and email["fcr"] == 1.0
    assert email["csat"] == 0.9 and email["abandonment_rate"] == 0.0 and email["sla_compliance"] is None
    assert (email["verdict"], email["reasons"]) == ("grow", ["csat_from", "cost_up_to"])

    assert (wa["billed_messages"], wa["message_cost"], wa["monthly_cost_in_period"]) == (11, 5.5, 0.0)
    assert wa["cost_per_case"] == pytest.approx(5.5 / 6) and wa["csat"] == 0.8
    assert wa["previous_volume"] == 0 and wa["volume_change"] is None
    assert (wa["verdict"], wa["reasons"]) == ("keep", [])

    assert tg["cost"] == 60.0 and tg["cost_per_case"] == pytest.approx(12.0)
    assert tg["csat"] == pytest.approx(1 / 3) and tg["abandonment_rate"] == pytest.approx(0.4)
    assert (tg["verdict"], tg["reasons"]) == ("review", ["csat_below", "cost_above"])

    # The same figures as the KPI report: the scorecard has no formula of its own.
    report = kpi_report(start=START, end=END)
    for row in card["channels"]:
        for kpi in (
            "volume",
            "tme_seconds",
            "tma_seconds",
            "fcr",
            "csat",
            "abandonment_rate",
            "sla_compliance",
        ):
            assert row[kpi] == report["by_channel"][row["key"]][kpi]
    # Without a per-message cost, its cost per case is the KPI report's.
    assert email["cost_per_case"] == pytest.approx(report["by_channel"][email["key"]]["cost_per_case"])

    # Volume share over time: one slice per day of a three-day period, adding up to the volume.
    assert [s["from"] for s in card["share_series"]] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert sum(s["volumes"][email["key"]] for s in card["share_series"]) == 10
    # Each slice is what the KPI report says for that slice alone, rolled up or live.
    for use_rollups in (True, False):
        for part in card["share_series"]:
            alone = kpi_report(
                start=datetime.fromisoformat(part["from"]).date(),
                end=datetime.fromisoformat(part["to"]).date(),
                use_rollups=use_rollups,
            )
            assert part["total"] == alone["totals"]["volume"]
            assert part["volumes"] == {k: alone["by_channel"][k]["volume"] for k in part["volumes"]}
    # Once the days are rolled up, the slices read the rollups and say the same.
    assert kpi_rollup_days(start=START - timedelta(days=3), end=END) > 0
    assert channel_scorecard(start=START, end=END)["share_series"] == card["share_series"]


def test_the_rule_is_configurable_and_idle_paid_channels_are_reviewed(scenario, settings):
    ChannelFactory(kind="sms", name="SMS", monthly_cost=31)  # 3 EUR in the period, no case at all
    settings.KPIS = {
        **settings.KPIS,
        "SCORECARD_REVIEW_CSAT_BELOW": 0.3,
        "SCORECARD_REVIEW_COST_ABOVE": 20,
        "SCORECARD_GROW_CSAT_FROM": 0.95,
        "CURRENCY": "USD",
    }
    card = channel_scorecard(start=START, end=END)
    verdicts = {r["name"]: (r["verdict"], r["reasons"]) for r in card["channels"]}
    assert verdicts == {
        "Email": ("keep", []),
        "WhatsApp": ("keep", []),
        "Telegram": ("keep", []),
        "SMS": ("review", ["no_cases"]),
    }
    assert card["currency"] == "USD" and card["rule"]["review_cost_above"] == 20


def test_small_share_of_a_paid_channel_and_too_few_cases(db, now, settings):
    big = ChannelFactory(name="Big", monthly_cost=0)
    small = ChannelFactory(name="Small", monthly_cost=3.1)
    tiny = ChannelFactory(name="Tiny", monthly_cost=0)
    _cases(big, 40, csat=(5,) * 10)
    _cases(small, 1)
    _cases(tiny, 2)
    settings.KPIS = {**settings.KPIS, "SCORECARD_MIN_CASES": 1}
    rows = {r["name"]: r for r in channel_scorecard(start=START, end=END)["channels"]}
    assert rows["Small"]["share"] == pytest.approx(1 / 43)
    assert (rows["Small"]["verdict"], rows["Small"]["reasons"]) == ("review", ["share_below"])
    assert rows["Big"]["verdict"] == "grow"
    settings.KPIS = {**settings.KPIS, "SCORECARD_MIN_CASES": 5}
    rows = {r["name"]: r for r in channel_scorecard(start=START, end=END)["channels"]}
    assert rows["Tiny"]["verdict"] == "too_few" and rows["Small"]["verdict"] == "too_few"


def test_only_supervisors(client, scenario):
    for url in ("/dashboard/channels/", "/dashboard/channels/scorecard.csv"):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]
    assert client.get(API).status_code == 401
    client.force_login(UserFactory(username="just-an-agent"))
    for url in ("/dashboard/channels/", "/dashboard/channels/scorecard.csv", API):
        assert client.get(url).status_code == 403
    client.force_login(UserFactory(username="boss", role="supervisors"))
    for url in ("/dashboard/channels/", "/dashboard/channels/scorecard.csv", API):
        assert client.get(url, PERIOD).status_code == 200


def test_page_shows_verdicts_rule_and_charts(client, scenario, supervisor):
    client.force_login(supervisor)
    response = client.get("/dashboard/channels/", PERIOD)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Telegram: 24 % of contacts, CSAT 33 %, 12.00 EUR per case — review it" in html
    assert "Email: 48 % of contacts, CSAT 90 %, 3.00 EUR per case — grow" in html
    assert "WhatsApp: 29 % of contacts, CSAT 80 %, 0.92 EUR per case — keep" in html
    assert "CSAT below 70 %" in html and "more than 10.00 EUR per case" in html  # the rule, shown
    assert "▲ +400 %" in html  # Email's trend
    assert html.count('class="point"') == 3 and html.count("<svg") == 2
    assert "Cost per case (EUR)" in html and "CSAT (answers 4 or 5)" in html  # axis titles
    assert not re.search(r'(src|href)="(https?:)?//', html)  # no CDN
    assert "<script" not in html
    assert re.findall(r'<th scope="row">([^<]*)</th>', html) == ["Email", "WhatsApp", "Telegram"]


def test_bad_period_is_explained(client, supervisor):
    client.force_login(supervisor)
    response = client.get("/dashboard/channels/", {"from": "2026-03-05", "to": "2026-03-02"})
    assert response.status_code == 400 and "must be before" in response.content.decode()
    assert client.get(API, {"from": "2026-03-05", "to": "2026-03-02"}).status_code == 400
    response = client.get("/dashboard/channels/scorecard.csv", {"from": "nope"})
    assert response.status_code == 400


def test_csv_export(client, scenario, supervisor):
    client.force_login(supervisor)
    response = client.get("/dashboard/channels/scorecard.csv", PERIOD)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="channel-scorecard-2026-03-02-2026-03-05.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["name"] for r in rows] == ["Email", "WhatsApp", "Telegram"]
    telegram = rows[2]
    assert telegram["key"] == scenario["telegram"].key and telegram["volume"] == "5"
    assert telegram["cost"] == "60.0" and float(telegram["cost_per_case"]) == 12.0
    assert telegram["verdict"] == "review" and telegram["reasons"] == "csat_below;cost_above"
    assert telegram["currency"] == "EUR" and (telegram["from"], telegram["to"]) == (
        "2026-03-02",
        "2026-03-05",
    )
    assert rows[1]["billed_messages"] == "11" and rows[1]["cost_per_message"] == "0.5"


def test_api_json(client, scenario, supervisor):
    client.force_login(supervisor)
    response = client.get(API, PERIOD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "from",
        "to",
        "currency",
        "total_volume",
        "previous_total_volume",
        "rule",
        "channels",
        "share_series",
    }
    assert (body["from"], body["to"], body["currency"], body["total_volume"]) == (
        "2026-03-02",
        "2026-03-05",
        "EUR",
        21,
    )
    assert body["rule"]["review_csat_below"] == 0.7
    telegram = body["channels"][2]
    assert telegram["key"] == scenario["telegram"].key and telegram["verdict"] == "review"
    assert telegram["cost_per_case"] == 12.0 and telegram["reasons"] == ["csat_below", "cost_above"]
    assert body == channel_scorecard(start=START, end=END)
    assert client.get(API, {"from": "2026-03-05", "to": "2026-03-02"}).status_code == 400
    # HTTP Basic like /api/v1/kpis/: an agent's credentials get 403, none get a 401 challenge.
    client.logout()
    assert "Basic" in client.get(API).get("WWW-Authenticate", "")


def _channels(n):
    for i in range(n):
        channel = ChannelFactory(
            name=f"Channel {i:02d}", monthly_cost=31 * (i + 1), settings={"cost_per_message": 0.1}
        )
        _cases(channel, 1 + i % 3, csat=(4,))


def test_query_count_is_flat_with_more_channels(client, db, now, supervisor, django_assert_max_num_queries):
    client.force_login(supervisor)
    _channels(3)
    with django_assert_max_num_queries(24) as small:
        assert client.get("/dashboard/channels/", PERIOD).status_code == 200
    _channels(9)
    with django_assert_max_num_queries(len(small.captured_queries)):
        html = client.get("/dashboard/channels/", PERIOD).content.decode()
    assert html.count('class="point"') == 12
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(client.get(API, PERIOD).json()["channels"]) == 12
