"""In Chromium: a tracking pixel in customer email is requested only when the agent asks."""

import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login, off_loop
from tests.factories import CaseFactory, MessageFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _pixel_requests(provider):
    return [r for r in provider.requests if r.path == "/pixel.gif"]


def test_remote_images_load_only_after_the_agent_clicks(asgi_server, browser_contexts, provider):
    def arrange():
        UserFactory(username="remote-img-agent")
        case = CaseFactory()
        MessageFactory(
            case=case,
            body="",
            html=f'<p>Our offer</p><img src="{provider.url}/pixel.gif?open=1" alt="offer">',
        )
        return case

    case = off_loop(arrange)
    page = browser_contexts().new_page()
    login(page, asgi_server, "remote-img-agent", "pass-word-123")

    page.goto(f"{asgi_server}/inbox/case/{case.pk}/")
    expect(page.locator("#timeline")).to_contain_text("Our offer")
    image = page.locator(".email-html img[alt=offer]")
    expect(image).to_have_attribute("data-remote-src", f"{provider.url}/pixel.gif?open=1")
    page.wait_for_load_state("networkidle")
    assert _pixel_requests(provider) == []

    page.get_by_role("button", name="Load remote images").click()

    expect(image).to_have_attribute("src", f"{provider.url}/pixel.gif?open=1")
    deadline = time.monotonic() + 10
    while not _pixel_requests(provider) and time.monotonic() < deadline:
        time.sleep(0.05)
    [request] = _pixel_requests(provider)
    assert request.query == {"open": "1"} and "referer" not in request.headers
    expect(page.get_by_role("button", name="Load remote images")).to_have_count(0)
