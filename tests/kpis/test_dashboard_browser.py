"""The dashboard in a real Chromium (Debian's) through Playwright, against the live server."""

import os
import shutil
import threading
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from kpis.models import SlaPolicy
from kpis.services import case_sla_apply
from tests.factories import ChannelFactory, TeamFactory, UserFactory
from tests.kpis.factories import SurveyAnswerFactory, build_case

CHROMIUM = "/usr/bin/chromium"
# docs/ is refreshed only with HELPDESK_UPDATE_SCREENSHOTS=1, so a test run leaves the checkout clean.
SCREENSHOT = (
    Path(__file__).resolve().parents[2]
    / ("docs" if os.environ.get("HELPDESK_UPDATE_SCREENSHOTS") else "test-results")
    / "dashboard.png"
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed"),
]


@pytest.fixture(autouse=True)
def _sync_playwright_beside_the_orm(monkeypatch):
    # The fixtures' ORM calls are plain synchronous ones even if an async test
    # earlier in the session left an event loop marked as running in this thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def month_of_work():
    """30 days of cases on three channels, two recent ones in the last week's window."""
    today = timezone.localdate()
    midnight = timezone.make_aware(datetime.combine(today, time.min))
    email = ChannelFactory(kind="email", name="Email", monthly_cost=300)
    whatsapp = ChannelFactory(kind="whatsapp", name="WhatsApp", monthly_cost=450)
    chat = ChannelFactory(kind="webchat", name="Website chat", monthly_cost=0)
    team = TeamFactory(name="Tier 1")
    agents = [UserFactory(username=u, first_name=u.title()) for u in ("ana", "bruno", "chloe")]
    channels = [email, whatsapp, chat]
    SlaPolicy.objects.create(name="30 minutes", first_response_minutes=30, business_hours_only=False)
    count = 0
    for day in range(8, 29):  # 8 to 28 days ago: outside the last-7-days window
        for n in range(1 + day % 3):
            opened = midnight - timedelta(days=day) + timedelta(hours=9 + n, minutes=7 * day % 50)
            wait = timedelta(minutes=4 + (day * 7 + n * 13) % 50)
            case = build_case(
                channel=channels[(day + n) % 3],
                agent=agents[(day + n) % 3],
                team=team,
                opened=_iso(opened),
                replies=(_iso(opened + wait),) if (day + n) % 7 else (),
                resolved=_iso(opened + wait + timedelta(hours=2 + n)),
            )
            count += 1
            case_sla_apply(case=case)
            if (day + n) % 7:
                kind = ("csat", "nps", "ces")[(day + n) % 3]
                score = {"csat": 2 + (day + n) % 4, "nps": 4 + (day * 3 + n) % 7, "ces": 3 + (day + n) % 5}[
                    kind
                ]
                SurveyAnswerFactory(case=case, kind=kind, score=score, answered_at=opened + wait)
    for n in range(2):  # two days ago: inside every window
        opened = midnight - timedelta(days=2) + timedelta(hours=10 + n)
        build_case(
            channel=email,
            agent=agents[0],
            opened=_iso(opened),
            replies=(_iso(opened + timedelta(minutes=5)),),
            resolved=_iso(opened + timedelta(minutes=30)),
        )
        count += 1
    return {"total": count, "today": today}


def _in_own_thread(fn, *args):
    """Run the browser in a thread of its own: Playwright's sync API refuses a thread
    where an event loop runs (an async test earlier in the session may leave one)."""
    failure = []

    def target():
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=target, name="playwright")
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "The browser session did not finish in 120 s"
    if failure:
        raise failure[0]


def test_supervisor_changes_the_period_and_reads_the_tiles(live_server, month_of_work):
    UserFactory(username="sue", first_name="Sue", last_name="Visor", role="supervisors")
    _in_own_thread(_drive_dashboard, live_server.url, month_of_work)
    assert SCREENSHOT.stat().st_size > 10_000


def _drive_dashboard(url, month_of_work):
    from playwright.sync_api import expect, sync_playwright

    today = month_of_work["today"]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/dashboard/")
            # Not logged in: the login page, then back to the dashboard.
            page.get_by_label("Username").fill("sue")
            page.get_by_label("Password").fill("pass-word-123")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/dashboard/**")
            volume = page.locator('.tile[data-kpi="volume"] .tile-value')
            expect(volume).to_have_text(f"{month_of_work['total']:,}")  # default: the last 30 days

            page.get_by_label("From").fill((today - timedelta(days=7)).isoformat())
            page.get_by_label("To (not included)").fill((today + timedelta(days=1)).isoformat())
            page.get_by_role("button", name="Show").click()
            page.wait_for_url(f"**from={(today - timedelta(days=7)).isoformat()}**")
            expect(volume).to_have_text("2")
            expect(page.locator('.tile[data-kpi="tme_seconds"] .tile-value')).to_have_text("5m 00s")
            expect(page.locator('.tile[data-kpi="fcr"] .tile-value')).to_have_text("100.0 %")

            # Keyboard users see where they are.
            page.get_by_label("Channel", exact=True).focus()
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none"

            page.goto(f"{url}/dashboard/")
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # Usable on a phone: nothing wider than the screen except inside the scrolling tables.
            page.set_viewport_size({"width": 390, "height": 844})
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390
            expect(page.get_by_role("link", name="Export channels as CSV")).to_be_visible()
        finally:
            browser.close()
