"""In Chromium: an agent inserts a suggested article's link into the reply with one click; a
web-chat visitor gets the bot's answer with its buttons and one tap resolves or hands over."""

import pytest
from playwright.sync_api import expect

from channels_adapters.base import Sender
from conversations.models import Case, CaseStatus
from conversations.services import receive_inbound
from knowledge.demo import demo_articles_seed
from knowledge.models import BotSession
from tests.browser.conftest import login, off_loop
from tests.browser.test_webchat_e2e import (
    HostSite,
    _clear_rate_limits,
    eventually,
    host_page,
    open_chat,
    send,
    webchat_channel,
)
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


@pytest.fixture
def shop_site(asgi_server, settings):
    # The company's website on another origin, embedding the bubble (as in tests/browser).
    _clear_rate_limits()
    # The worker answering is in this process: its article links point at the test server.
    settings.PUBLIC_BASE_URL = asgi_server
    site = HostSite().start()
    yield site
    site.stop()


def bot_exchange(asgi_server, browser_contexts, shop_site):
    """A visitor asks in the bubble; the worker's answer arrives with its two buttons."""
    off_loop(demo_articles_seed)
    channel = webchat_channel(shop_site.url, bot={"mode": "always", "name": "Lola"})
    shop_site.pages["/"] = host_page(asgi_server, channel)
    page = browser_contexts().new_page()
    page.goto(shop_site.url + "/")
    frame = open_chat(page, channel)
    send(frame, "How do I cancel an order?")
    answer = frame.locator(".msg.ours", has_text="Did this solve your question?")
    expect(answer).to_be_visible(timeout=20000)
    expect(answer.locator(".author")).to_have_text("Lola")
    expect(answer.get_by_role("link")).to_have_attribute("href", f"{asgi_server}/help/en/cancel-an-order/")
    buttons = answer.locator(".choices button")
    expect(buttons).to_have_text(["Yes", "Talk to a person"])
    case_id = BotSession.objects.get().case_id
    return page, frame, answer, case_id


def test_web_chat_visitor_taps_yes_and_the_bot_resolves_the_case(
    asgi_server, browser_contexts, shop_site, live_worker
):
    page, frame, answer, case_id = bot_exchange(asgi_server, browser_contexts, shop_site)
    answer.get_by_role("button", name="Yes").click()
    expect(answer.get_by_role("button", name="Yes")).to_be_disabled()
    expect(frame.locator(".msg.mine", has_text="Yes")).to_be_visible()
    expect(frame.locator(".msg.ours", has_text="glad it helped")).to_be_visible(timeout=20000)
    eventually(page, lambda: Case.objects.get(pk=case_id).status == CaseStatus.RESOLVED)
    assert BotSession.objects.get(case_id=case_id).state == BotSession.State.RESOLVED


def test_web_chat_visitor_taps_talk_to_a_person_and_the_case_is_handed_over(
    asgi_server, browser_contexts, shop_site, live_worker
):
    page, frame, answer, case_id = bot_exchange(asgi_server, browser_contexts, shop_site)
    answer.get_by_role("button", name="Talk to a person").click()
    expect(frame.locator(".msg.ours", has_text="passing you to a person")).to_be_visible(timeout=20000)
    eventually(page, lambda: BotSession.objects.get(case_id=case_id).state == BotSession.State.HANDED_OFF)
    case = Case.objects.get(pk=case_id)
    assert case.status == CaseStatus.OPEN and case.assignee_id is None  # in the agents' queue
    assert BotSession.objects.get(case_id=case_id).handoff_reason == "asked"
