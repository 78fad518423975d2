"""Every KPI of DESIGN.md on hand-built cases (see conftest.world), exact values.

Worked out by hand for [2026-03-02, 2026-03-05):
- volume: c1 c2 c3 c4 c6 c7 v1 v2 = 8 (c5 opened before, c8 after).
- TME: c1 600, c2 1200 (bot and note ignored), c4 300, c7 1800, v2 900 (agent's outbound call) -> 960.
- resolution: c1 3600, c2 86400, c3 3600, c4 86400 (last resolution), c5 36000, v1 300, v2 1200 -> 217500/7.
- TMA: c1 3000, c2 85200, c4 86100, c5 34200, v2 300 -> 41760 (c3 and v1 never got an agent message).
- talk time: 120, 300, 60 -> 160.
- FCR: c1, c5, v2 of c1 c2 c4 c5 v2 -> 3/5 (c2 two messages, c4 reopened).
- abandonment: c3 (resolved unanswered), c6 (expired) of 6 non-phone cases + 1 unanswered of 3 ended inbound
  calls -> 3/9.
- CSAT 5, 3, 4 -> 2/3; NPS 10, 9, 8, 3 -> (2 - 1)/4; CES 6, 7, 2 -> 5.
- SLA (email, 30 min): c1 met, c2 met, c3 breached, c6 breached, c7 met at the minute -> 3/5.
- cost: email 30 + phone 6 + chat 0 over 3 March days / 8 cases -> 4.5.
"""

from datetime import date

import pytest

from kpis.selectors import KPI_NAMES, KpiFilter, kpi_report
from kpis.services import kpi_rollup_days
from tests.kpis.conftest import END, START

pytestmark = pytest.mark.django_db


def test_totals_match_the_definitions(world):
    totals = kpi_report(start=START, end=END)["totals"]
    assert set(totals) == set(KPI_NAMES)
    assert totals == {
        "volume": 8,
        "tme_seconds": 960.0,
        "resolution_seconds": pytest.approx(217500 / 7),
        "tma_seconds": 41760.0,
        "talk_seconds": 160.0,
        "fcr": 0.6,
        "abandonment_rate": pytest.approx(3 / 9),
        "csat": pytest.approx(2 / 3),
        "nps": 0.25,
        "ces": 5.0,
        "sla_compliance": 0.6,
        "cost_per_case": 4.5,
    }


def test_by_channel_agent_and_team(world):
    report = kpi_report(start=START, end=END)
    email, voice, chat = (report["by_channel"][world[k].key] for k in ("email", "voice", "chat"))
    assert (email["volume"], email["tme_seconds"], email["cost_per_case"]) == (5, 1200.0, 6.0)
    assert email["abandonment_rate"] == 0.4 and email["sla_compliance"] == 0.6 and email["csat"] == 0.5
    assert (voice["volume"], voice["talk_seconds"], voice["cost_per_case"]) == (2, 160.0, 3.0)
    assert voice["abandonment_rate"] == pytest.approx(1 / 3) and voice["sla_compliance"] is None
    assert (chat["volume"], chat["fcr"], chat["cost_per_case"]) == (1, 0.5, 0.0)
    a1, a2 = report["by_agent"][str(world["a1"].pk)], report["by_agent"][str(world["a2"].pk)]
    assert (a1["volume"], a1["tme_seconds"], a2["volume"]) == (4, 1200.0, 3)
    assert a1["cost_per_case"] is None  # cost is a channel's, not an agent's
    assert report["by_team"] == {str(world["team"].pk): report["by_team"][str(world["team"].pk)]}
    assert report["by_team"][str(world["team"].pk)]["volume"] == 2


def test_series_per_day(world):
    series = kpi_report(start=START, end=END)["series"]
    assert [d["date"] for d in series] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert [d["volume"] for d in series] == [3, 3, 2]
    assert series[0]["tme_seconds"] == 900.0  # c1 600, c2 1200
    assert series[0]["resolution_seconds"] == pytest.approx((3600 + 36000 + 300) / 3)  # c1, c5, v1
    assert series[2]["talk_seconds"] is None  # only a ringing call that day
    assert series[0]["cost_per_case"] == pytest.approx((10 + 2) / 3)


def test_filters(world):
    by_email = kpi_report(start=START, end=END, flt=KpiFilter(channel_id=world["email"].pk))["totals"]
    assert (by_email["volume"], by_email["cost_per_case"], by_email["tme_seconds"]) == (5, 6.0, 1200.0)
    by_agent = kpi_report(start=START, end=END, flt=KpiFilter(agent_id=world["a2"].pk))["totals"]
    # a2: c3 (abandoned), c4, v2; c4 reopened and v2 answered by one outbound call.
    assert by_agent["volume"] == 3 and by_agent["fcr"] == 0.5 and by_agent["cost_per_case"] is None
    assert by_agent["csat"] == 1.0  # a2's only CSAT answer is on c4: score 4
    by_team = kpi_report(start=START, end=END, flt=KpiFilter(team_id=world["team"].pk))["totals"]
    assert by_team["volume"] == 2 and by_team["fcr"] == 0.5


def test_nothing_to_average_is_null_never_zero(world):
    report = kpi_report(start=date(2026, 2, 1), end=date(2026, 2, 3))
    totals = report["totals"]
    assert totals["volume"] == 0
    assert all(totals[k] is None for k in KPI_NAMES if k != "volume")
    assert report["by_agent"] == {}
    # Every active channel is listed, even with no case: its cost per case is null, not 0.
    assert report["by_channel"][world["email"].key]["volume"] == 0
    assert report["by_channel"][world["email"].key]["cost_per_case"] is None


def test_rollups_equal_the_live_computation(world, now):
    live = kpi_report(start=date(2026, 2, 25), end=date(2026, 3, 11), use_rollups=False)
    written = kpi_rollup_days(start=date(2026, 2, 25), end=date(2026, 3, 11))
    assert written > 0
    rolled = kpi_report(start=date(2026, 2, 25), end=date(2026, 3, 11))
    assert rolled == live
    sub = kpi_report(start=START, end=END, flt=KpiFilter(channel_id=world["email"].pk))
    assert sub == kpi_report(
        start=START, end=END, flt=KpiFilter(channel_id=world["email"].pk), use_rollups=False
    )


def test_rolled_up_days_are_read_from_the_rollup(world, now):
    from kpis.models import KpiDaily, KpiDayTotal

    kpi_rollup_days(start=START, end=END)
    # Rollups are what a past day reads: change one and the report follows. A day without
    # its per-day total (rolled up before those existed) is summed from its rows.
    KpiDaily.objects.filter(day=START).update(cases_opened=0)
    KpiDayTotal.objects.filter(day=START).delete()
    report = kpi_report(start=START, end=END)
    assert report["totals"]["volume"] == 5
    assert sum(c["volume"] for c in report["by_channel"].values()) == 5
    assert report["series"][0]["volume"] == 0
    kpi_rollup_days(start=START, end=END)  # a rebuild puts it right
    assert kpi_report(start=START, end=END)["totals"]["volume"] == 8
    # With every day's total there, a report without filters reads its totals and series
    # from them (90 rows for a quarter), the breakdowns from the rows.
    assert KpiDayTotal.objects.filter(day__gte=START, day__lt=END).count() == (END - START).days
    KpiDayTotal.objects.filter(day=START).update(cases_opened=0)
    report = kpi_report(start=START, end=END)
    assert report["totals"]["volume"] == 5 and report["series"][0]["volume"] == 0
    assert sum(c["volume"] for c in report["by_channel"].values()) == 8
    # A filtered report sums the rows, whatever the totals say.
    email = KpiFilter(channel_id=world["email"].pk)
    assert kpi_report(start=START, end=END, flt=email) == kpi_report(
        start=START, end=END, flt=email, use_rollups=False
    )


def test_deleting_a_channel_drops_the_day_totals_its_rows_counted_in(world, now):
    from kpis.models import KpiDaily, KpiDayTotal
    from tests.factories import ChannelFactory

    spare = ChannelFactory(kind="sms", name="Spare line")
    kpi_rollup_days(start=START, end=END)
    assert KpiDayTotal.objects.exists()
    spare.delete()
    # Its rows went with it (CASCADE): the totals would still count them.
    assert not KpiDayTotal.objects.exists()
    assert KpiDaily.objects.exists()
    assert kpi_report(start=START, end=END)["totals"]["volume"] == 8


def test_bot_note_and_system_lines_do_not_count_through_the_core(
    time_machine, django_capture_on_commit_callbacks
):
    from channels_adapters.base import Sender
    from conversations.cases import assign_case, set_case_status
    from conversations.models import CaseStatus
    from conversations.services import add_note, receive_inbound, send_automatic, send_reply
    from tests.factories import ChannelFactory, UserFactory, provider_accepts
    from tests.kpis.factories import at

    channel, agent = ChannelFactory(), UserFactory(username="zoe")
    time_machine.move_to(at("2026-03-02T09:00"), tick=False)
    case = receive_inbound(
        channel=channel, sender=Sender("email", "ana@example.com"), external_id="m1", text="Hello?"
    ).message.case
    time_machine.move_to(at("2026-03-02T09:01"), tick=False)
    send_automatic(case=case, body="Thanks, an agent will answer soon.")  # auto-reply: a bot
    assign_case(case=case, assignee=agent)  # a system line
    time_machine.move_to(at("2026-03-02T09:02"), tick=False)
    add_note(case=case, author_user=agent, body="Looks like a refund")
    time_machine.move_to(at("2026-03-02T09:15"), tick=False)
    provider_accepts(send_reply(case=case, author_user=agent, body="Refund on its way"))
    time_machine.move_to(at("2026-03-02T09:30"), tick=False)
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)
    totals = kpi_report(start=date(2026, 3, 2), end=date(2026, 3, 3))["totals"]
    assert totals["tme_seconds"] == 15 * 60  # the agent's reply, not the bot's line at 09:01
    assert totals["tma_seconds"] == 15 * 60
    assert totals["fcr"] == 1.0  # one agent message: the bot, the note and the system line do not count
    assert totals["abandonment_rate"] == 0.0


def test_beat_rollup_rewrites_the_recent_past_days(world, now):
    from kpis.models import KpiRollupDay
    from kpis.tasks import kpi_rollup

    kpi_rollup()  # the beat task, run in-process
    days = sorted(KpiRollupDay.objects.values_list("day", flat=True))
    assert days[0] == date(2026, 3, 2) and days[-1] == date(2026, 3, 9)  # 8 days, today stays live
    assert kpi_report(start=START, end=END) == kpi_report(start=START, end=END, use_rollups=False)


def test_every_kpis_beat_entry_names_a_registered_task(settings):
    from helpdesk.celery_app import app

    app.loader.import_default_modules()
    names = [e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].startswith("kpis.")]
    assert sorted(names) == [
        "kpis.tasks.kpi_rollup",
        "kpis.tasks.sla_check",
        "kpis.tasks.survey_campaigns_run",
        "kpis.tasks.surveys_send_due",
    ]
    assert all(name in app.tasks for name in names)


def test_a_case_with_an_answered_call_is_not_abandoned(db, now):
    # The live day asks, per case, whether a call of it was answered (a scalar subquery on
    # the partial index, bench/scale.py): a case with one is not abandoned, live or rolled up.
    from tests.factories import ChannelFactory
    from tests.kpis.factories import CallFactory, build_case

    email = ChannelFactory(kind="email", name="Mail")
    called = build_case(channel=email, opened="2026-03-02T09:00", resolved="2026-03-02T10:00")
    CallFactory(case=called, channel=email, created_at=called.opened_at, meta={"answered": True})
    build_case(channel=email, opened="2026-03-02T11:00", resolved="2026-03-02T12:00")
    live = kpi_report(start=date(2026, 3, 2), end=date(2026, 3, 3), use_rollups=False, now=now)
    assert live["totals"]["abandonment_rate"] == 0.5
    kpi_rollup_days(start=date(2026, 3, 2), end=date(2026, 3, 3), now=now)
    rolled = kpi_report(start=date(2026, 3, 2), end=date(2026, 3, 3), now=now)
    assert rolled["totals"] == live["totals"]
