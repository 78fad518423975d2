import re

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PERIOD = {"from": "2026-03-02", "to": "2026-03-05"}


def tile(html: str, kpi: str) -> str:
    match = re.search(rf'data-kpi="{kpi}">.*?class="tile-value">([^<]*)<', html, re.S)
    return match.group(1)


def test_tiles_show_the_kpis_with_change_against_the_previous_period(client, world, supervisor):
    client.force_login(supervisor)
    response = client.get("/dashboard/", PERIOD)
    assert response.status_code == 200
    html = response.content.decode()
    assert tile(html, "volume") == "8"
    assert tile(html, "tme_seconds") == "16m 00s"
    assert tile(html, "fcr") == "60.0 %"
    assert tile(html, "nps") == "+25"
    assert tile(html, "ces") == "5.00"
    assert tile(html, "sla_compliance") == "60.0 %"
    # The 3 days before hold only c5 (opened 1 March, answered after 30 min).
    assert "+7" in html  # volume 1 -> 8
    assert "−14m 00s" in html  # TME 30m -> 16m, shown as better


def test_charts_are_inline_svg_and_tables_sort(client, world, supervisor):
    client.force_login(supervisor)
    html = client.get("/dashboard/", {**PERIOD, "sort_channel": "-volume"}).content.decode()
    # Nine trends since issue 18 added NPS and CES.
    assert html.count("<svg") == 9 and "<polyline" in html
    assert 'data-chart="nps"' in html and 'data-chart="ces"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing loaded from elsewhere (no CDN)
    channels = re.findall(r'<th scope="row">([^<]*)</th>', html)
    assert channels[:3] == ["Email", "Phone", "Chat API"]
    html = client.get("/dashboard/", {**PERIOD, "sort_channel": "name"}).content.decode()
    assert re.findall(r'<th scope="row">([^<]*)</th>', html)[:3] == ["Chat API", "Email", "Phone"]
    assert 'aria-sort="ascending"' in html


def test_filters_and_labels(client, world, supervisor):
    client.force_login(supervisor)
    html = client.get("/dashboard/", {**PERIOD, "channel": world["email"].key}).content.decode()
    assert tile(html, "volume") == "5"
    for label in ('for="f-from"', 'for="f-to"', 'for="f-channel"', 'for="f-agent"', 'for="f-team"'):
        assert label in html
    assert 'href="/inbox/"' in html


def test_bad_period_is_explained(client, supervisor):
    client.force_login(supervisor)
    response = client.get("/dashboard/", {"from": "2026-03-05", "to": "2026-03-02"})
    assert response.status_code == 400
    assert "must be before" in response.content.decode()


def test_only_supervisors(client, world):
    response = client.get("/dashboard/")
    assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(UserFactory(username="just-an-agent"))
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/channels.csv").status_code == 403


def test_dashboard_query_count_is_flat(client, world, supervisor, django_assert_max_num_queries):
    client.force_login(supervisor)
    with django_assert_max_num_queries(20):
        assert client.get("/dashboard/", PERIOD).status_code == 200


def test_admin_pages_for_kpi_models(client, world):
    from kpis.models import BusinessHours

    admin = UserFactory(username="root-admin", is_superuser=True, is_staff=True)
    client.force_login(admin)
    for model in ("businesshours", "slapolicy", "casesla", "surveycampaign", "surveyrequest", "surveyanswer"):
        assert client.get(f"/admin/kpis/{model}/").status_code == 200
    response = client.post(
        "/admin/kpis/businesshours/add/",
        {"name": "Bad", "time_zone": "Mars/Olympus", "weekly": "{}", "holidays": "[]"},
    )
    assert response.status_code == 200 and b"Unknown time zone" in response.content
    response = client.post(
        "/admin/kpis/businesshours/add/",
        {
            "name": "Office",
            "time_zone": "Europe/Madrid",
            "weekly": '{"mon": [["09:00", "17:00"]]}',
            "holidays": "[]",
        },
    )
    assert response.status_code == 302 and BusinessHours.objects.get().weekly == {"mon": [["09:00", "17:00"]]}


def test_rebuild_kpis_command(world, now):
    from io import StringIO

    from django.core.management import call_command

    from kpis.models import KpiDaily, KpiRollupDay

    out = StringIO()
    call_command("rebuild_kpis", "--from", "2026-03-01", "--to", "2026-03-10", stdout=out)
    assert "2026-03-01 .. 2026-03-10" in out.getvalue()
    assert KpiRollupDay.objects.count() == 9 and KpiDaily.objects.filter(day="2026-03-02").exists()


def test_unknown_channel_filter_is_explained(client, supervisor):
    client.force_login(supervisor)
    response = client.get("/dashboard/", {"channel": "nope"})
    assert response.status_code == 400
    assert "Channel: No channel has this key." in response.content.decode()


def test_cost_per_case_tile_has_the_currency_and_sparse_kpis_draw_lines(client, world, supervisor, settings):
    settings.KPIS = {**settings.KPIS, "CURRENCY": "USD"}
    client.force_login(supervisor)
    html = client.get("/dashboard/", PERIOD).content.decode()
    # (310 + 62) a month over 3 days of March = 36 for 8 cases; the API chat channel costs nothing.
    assert tile(html, "cost_per_case") == "4.50 USD"
    # CSAT has answers on three separate days: one line through them, not three lone dots.
    csat = re.search(r'data-chart="csat".*?</figure>', html, re.S).group(0)
    assert csat.count("<polyline") == 1 and csat.count("<circle") == 3
    # Axis labels on both axes: 0 %, 50 % and 100 % up the side, dates along the bottom.
    assert "0.0 %" in csat and "100.0 %" in csat and "03-02" in csat
