"""The channel scorecard in a real Chromium (Debian's) through Playwright, against the live server."""

import shutil
from datetime import timedelta

import pytest

from conversations.models import Case
from tests.factories import UserFactory
from tests.kpis import test_dashboard_browser as dashboard_browser
from tests.kpis.factories import SurveyAnswerFactory

CHROMIUM, SCREENSHOT, _in_own_thread = (
    dashboard_browser.CHROMIUM,
    dashboard_browser.SCREENSHOT,
    dashboard_browser._in_own_thread,
)
# The dashboard browser test's fixtures: the same month of work, the same thread guard.
month_of_work = dashboard_browser.month_of_work
_sync_playwright_beside_the_orm = dashboard_browser._sync_playwright_beside_the_orm

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed"),
]
SCREENSHOT_SCORECARD = SCREENSHOT.with_name("scorecard.png")


def test_supervisor_sees_a_point_per_channel_on_the_scatter(live_server, month_of_work):
    UserFactory(username="sue", first_name="Sue", role="supervisors")
    # The month of work asks CSAT on email only; a point needs a CSAT, so every channel gets answers.
    for case in Case.objects.exclude(origin_channel__name="Email").order_by("opened_at")[:10]:
        SurveyAnswerFactory(case=case, kind="csat", score=2 + case.pk % 4, answered_at=case.opened_at)
    _in_own_thread(_drive_scorecard, live_server.url, month_of_work)
    assert SCREENSHOT_SCORECARD.stat().st_size > 10_000


def _drive_scorecard(url, month_of_work):
    from playwright.sync_api import expect, sync_playwright

    today = month_of_work["today"]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            start, end = today - timedelta(days=29), today + timedelta(days=1)
            page.goto(f"{url}/dashboard/channels/?from={start}&to={end}")
            page.get_by_label("Username").fill("sue")
            page.get_by_label("Password").fill("pass-word-123")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/dashboard/channels/**")
            expect(page.get_by_role("heading", name="Channel scorecard")).to_be_visible()
            # One labelled point per channel: Email, WhatsApp and Website chat.
            points = page.locator(".scatter svg g.point")
            expect(points).to_have_count(3)
            labels = sorted(points.locator("text").all_text_contents())
            assert labels == ["Email", "Website chat", "WhatsApp"]
            for i in range(3):
                box = points.nth(i).locator("circle").bounding_box()
                assert box and box["width"] > 4  # drawn, not collapsed
            expect(page.locator(".verdicts li")).to_have_count(3)
            expect(page.get_by_text("The rule behind the verdicts")).to_be_visible()
            expect(page.get_by_role("link", name="Export the scorecard as CSV")).to_be_visible()
            SCREENSHOT_SCORECARD.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT_SCORECARD), full_page=True)
            # Usable on a phone: nothing wider than the screen except inside the scrolling table.
            page.set_viewport_size({"width": 390, "height": 844})
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        finally:
            browser.close()
