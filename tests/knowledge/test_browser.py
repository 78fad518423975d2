"""In Chromium: an agent inserts a suggested article's link into the reply with one click."""

import pytest
from playwright.sync_api import expect

from channels_adapters.base import Sender
from conversations.services import receive_inbound
from knowledge.demo import demo_articles_seed
from tests.browser.conftest import login, off_loop
from tests.factories import ChannelFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_agent_inserts_a_suggested_article_link(asgi_server, browser_contexts):
    off_loop(demo_articles_seed)
    channel = ChannelFactory(name="Shop API")
    result = off_loop(
        receive_inbound, channel=channel, sender=Sender("api", "c-1"), external_id="b1",
        text="Hello, I forgot my password and cannot sign in",
    )  # fmt: skip
    UserFactory(username="ana", role="agents")
    page = browser_contexts().new_page()
    login(page, asgi_server, "ana", "pass-word-123")
    page.goto(f"{asgi_server}/inbox/case/{result.message.case_id}/")
    box = page.locator("#kb-suggestions")
    expect(box).to_be_visible()
    expect(box.get_by_role("link", name="Reset your password")).to_be_visible()
    page.get_by_label("Message", exact=True).fill("Hi! Here you go:")
    box.get_by_role("button", name="Insert link: Reset your password").click()
    value = page.get_by_label("Message", exact=True).input_value()
    assert value == f"Hi! Here you go: Reset your password: {asgi_server}/help/en/reset-your-password/"
