"""A website visitor's case in the agent's inbox: who and where the visitor is, and where to answer."""

import pytest
from django.core.cache import cache

from conversations.models import Case
from tests.channels_adapters.webchat_support import Frame, verified_user, webchat_channel
from tests.factories import ChannelFactory, IdentityFactory, UserFactory

pytestmark = pytest.mark.django_db

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def visitor_case(client):
    chat = webchat_channel()
    frame = Frame(client, chat)
    frame.start(**verified_user("501", email="lola@example.com", name="Lola"))
    client.post(
        frame.url("messages"),
        '{"client_id": "c1", "text": "Do you ship to Canarias?", '
        '"page": {"url": "https://shop.example/envios"}, "tz": "Atlantic/Canary"}',
        content_type="application/json",
        headers={**frame.headers(), "User-Agent": CHROME_WINDOWS},
    )
    return chat, Case.objects.get()


def test_the_sidebar_shows_the_visitors_page_browser_time_zone_and_presence(client, visitor_case):
    chat, case = visitor_case
    client.force_login(UserFactory())
    page = client.get(f"/inbox/case/{case.pk}/").content.decode()
    assert "Website visitor" in page and "On the website now" in page
    assert 'href="https://shop.example/envios"' in page and 'rel="noopener noreferrer nofollow"' in page
    assert "Chrome 131 on Windows" in page and "Atlantic/Canary" in page
    assert "Verified by the website" in page
    cache.clear()
    assert "Has left the website" in client.get(f"/inbox/case/{case.pk}/").content.decode()


def test_the_reply_box_offers_email_once_the_visitor_has_left(client, visitor_case):
    chat, case = visitor_case
    email = ChannelFactory(kind="email", name="Support email", credentials={})
    client.force_login(UserFactory())
    options = client.get(f"/inbox/case/{case.pk}/").context["reply_options"]
    assert next(o for o in options if o["default"])["channel"] == chat
    cache.clear()  # presence runs out
    options = client.get(f"/inbox/case/{case.pk}/").context["reply_options"]
    assert next(o for o in options if o["default"])["channel"] == email
    chat_option = next(o for o in options if o["channel"] == chat)
    assert "left the website" in chat_option["rule"]
    assert next(o for o in options if o["channel"] == email)["recipient"].address == "lola@example.com"


def test_only_the_visitors_session_on_this_site_is_answered_on_this_chat(client, visitor_case):
    chat, case = visitor_case
    other_site = webchat_channel()
    customer = case.thread.customer
    IdentityFactory(customer=customer, kind="webchat", address=f"{other_site.key}:v:someone-else")
    client.force_login(UserFactory())
    options = client.get(f"/inbox/case/{case.pk}/").context["reply_options"]
    by_channel = {o["channel"].pk: o["recipient"].address for o in options}
    assert by_channel[chat.pk] == f"{chat.key}:u:501"
    assert by_channel[other_site.pk] == f"{other_site.key}:v:someone-else"
