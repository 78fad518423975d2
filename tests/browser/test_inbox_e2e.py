"""End to end in Chromium: log in, read, reply, and watch the inbox change live."""

import io
import json
import os
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from channels_adapters.base import hmac_sha256_hex
from channels_adapters.models import Channel
from conversations.cases import case_note_add
from conversations.models import CannedResponse, Case, Message
from tests.browser.conftest import login, off_loop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Screenshots refresh docs/ only when asked (`HELPDESK_UPDATE_SCREENSHOTS=1 make test`),
# so a test run leaves the checkout clean; otherwise they go to test-results/.
_ROOT = Path(__file__).resolve().parents[2]
DOCS = _ROOT / ("docs" if os.environ.get("HELPDESK_UPDATE_SCREENSHOTS") else "test-results")
DOCS.mkdir(exist_ok=True)


def seed():
    off_loop(call_command, "seed_demo", stdout=io.StringIO())
    return Channel.objects.get(kind="api")


def case_of(name: str) -> Case:
    return Case.objects.exclude(status="resolved").get(thread__customer__name=name)


def post_signed(base: str, channel: Channel, payload: dict, secret: str | None = None) -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = hmac_sha256_hex(secret or channel.credentials["secret"], body)
    return httpx.post(
        base + channel.webhook_path,
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": "sha256=" + signature},
    )


def reply_box(page):
    return page.get_by_label("Message", exact=True)


def test_agent_logs_in_opens_a_case_replies_and_sees_it_queued_then_sent(
    asgi_server, browser_contexts, provider, settings
):
    api = seed()
    api.credentials = {**api.credentials, "callback_url": provider.url + "/callback"}
    api.save()
    page = browser_contexts().new_page()
    login(page, asgi_server, "agent1", "agent1-demo-pass")
    expect(page.locator(".case-row", has_text="Ana Silva")).to_be_visible()
    dee = page.locator(".case-row", has_text="Dee Novak")
    expect(dee).to_contain_text("waiting")
    dee.get_by_role("link").click()
    page.wait_for_selector("body[data-live='1']")
    expect(page.locator("#timeline")).to_contain_text("change the delivery address of order 771")
    # The default channel is the one Dee last wrote on.
    expect(page.get_by_label("Send on")).to_have_value(str(api.pk))

    reply_box(page).fill("Yes Dee, tell me the new address and I'll update order 771.")
    reply_box(page).press("Control+Enter")
    bubble = page.locator(".msg.out", has_text="update order 771")
    # No worker yet: the reply waits in the queue, and the agent sees that.
    expect(bubble.locator(".dstatus")).to_have_attribute("data-status", "queued")
    message = Message.objects.get(body__startswith="Yes Dee")
    assert message.status == "queued" and provider.requests == []

    from celery.contrib.testing.worker import start_worker

    from helpdesk.celery_app import app

    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=10):
        # The worker sends it to the API channel's callback; the page hears about it live.
        expect(bubble.locator(".dstatus")).to_have_attribute("data-status", "sent", timeout=20000)
    sent = provider.requests[0].json()
    assert sent["text"] == "Yes Dee, tell me the new address and I'll update order 771."
    assert sent["to"] == {"email": "dee@example.com"}
    expect(reply_box(page)).to_have_value("")


def test_signed_webhook_appears_in_list_and_thread_without_reload(asgi_server, browser_contexts, live_worker):
    api = seed()
    context = browser_contexts()
    inbox = context.new_page()
    login(inbox, asgi_server, "agent1", "agent1-demo-pass")
    thread = context.new_page()
    thread.goto(f"{asgi_server}/inbox/case/{case_of('Dee Novak').pk}/")
    thread.wait_for_selector("body[data-live='1']")
    for page in (inbox, thread):
        page.evaluate("window.__sameDocument = true")

    # A forged request is refused and nothing appears.
    forged = post_signed(
        asgi_server,
        api,
        {"external_id": "e2e-forged", "from": {"email": "mallory@example.com"}, "text": "x"},
        secret="wrong",
    )
    assert forged.status_code == 403

    answer = post_signed(
        asgi_server,
        api,
        {
            "external_id": "e2e-1",
            "from": {"email": "eve@example.com", "name": "Eve Example"},
            "text": "Where is my parcel?",
        },
    )
    assert answer.status_code == 200
    new_row = inbox.locator(".case-row", has_text="Eve Example")
    expect(new_row).to_be_visible()
    expect(new_row).to_contain_text("Where is my parcel?")
    expect(new_row).to_have_class("case-row unread flash")

    post_signed(
        asgi_server,
        api,
        {
            "external_id": "e2e-2",
            "from": {"email": "dee@example.com"},
            "text": "Actually, ship it to my office.",
        },
    )
    expect(thread.locator("#timeline .msg.in", has_text="ship it to my office")).to_be_visible()
    expect(inbox.locator(".case-row", has_text="Dee Novak")).to_contain_text("ship it to my office")
    assert inbox.evaluate("window.__sameDocument") is True
    assert thread.evaluate("window.__sameDocument") is True
    assert "mallory" not in inbox.content()


def test_two_agents_one_assigns_the_other_sees_it(asgi_server, browser_contexts):
    seed()
    case = case_of("Dee Novak")
    alex = browser_contexts().new_page()
    login(alex, asgi_server, "agent1", "agent1-demo-pass")
    alex.goto(f"{asgi_server}/inbox/case/{case.pk}/")
    blair_context = browser_contexts()
    blair = blair_context.new_page()
    login(blair, asgi_server, "agent2", "agent2-demo-pass")
    blair_list = blair_context.new_page()
    blair_list.goto(f"{asgi_server}/inbox/")
    blair.goto(f"{asgi_server}/inbox/case/{case.pk}/")
    for page in (alex, blair, blair_list):
        page.wait_for_selector("body[data-live='1']")

    # Collision warning while Alex types.
    reply_box(alex).press_sequentially("Checking with the warehouse")
    expect(blair.locator("#collision")).to_have_text("Alex Agent is replying…")
    expect(alex.locator("#collision")).to_be_hidden()

    alex.get_by_role("button", name="Assign to me").click()
    expect(blair.locator("#case-panel [data-assignee]")).to_contain_text("Alex Agent")
    expect(blair.locator("#timeline")).to_contain_text("Case assigned to Alex Agent by Alex Agent")
    expect(blair_list.locator(f'.case-row[data-case="{case.pk}"] [data-assignee]')).to_have_text("Alex Agent")

    # And back: Blair sets it pending, Alex sees it.
    blair.get_by_label("Status").select_option("pending")
    expect(alex.locator("#case-panel h1 .status")).to_have_text("Pending")
    case.refresh_from_db()
    assert case.assignee.username == "agent1" and case.status == "pending"


def test_screenshots_keyboard_help_labels_and_phone_layout(asgi_server, browser_contexts):
    from django.contrib.auth import get_user_model

    seed()
    CannedResponse.objects.create(
        shortcut="sorry-delay",
        title="Delivery delay",
        body="Hi {{customer.first_name}}, I'm sorry for the wait.",
    )
    ana_case = case_of("Ana Silva")
    alex = get_user_model().objects.get(username="agent1")
    off_loop(
        case_note_add,
        case=ana_case,
        author_user=alex,
        body="@agent2 she was promised the jar within 5 days on Facebook; it never shipped. Reshipping now.",
    )
    # Realistic waiting times and owners for the screenshots.
    now = timezone.now()
    for minutes, name in [(135, "Ana Silva"), (47, "Bo Chen"), (23, "Cy Okafor"), (9, "Dee Novak")]:
        Case.objects.filter(pk=case_of(name).pk).update(waiting_since=now - timedelta(minutes=minutes))
    Case.objects.filter(pk=case_of("Cy Okafor").pk).update(
        assignee=get_user_model().objects.get(username="agent2")
    )
    supervisor = browser_contexts().new_page()
    login(supervisor, asgi_server, "supervisor", "supervisor-demo-pass")
    supervisor.screenshot(path=str(DOCS / "inbox.png"))

    page = browser_contexts().new_page()
    login(page, asgi_server, "agent1", "agent1-demo-pass")
    unlabeled = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
        .map(el => el.outerHTML)"""
    assert page.evaluate(unlabeled) == []

    page.keyboard.press("j")
    expect(page.locator(".case-row.selected")).to_have_count(1)
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")

    page.goto(f"{asgi_server}/inbox/case/{ana_case.pk}/")
    page.wait_for_selector("body[data-live='1']")
    assert page.evaluate(unlabeled) == []
    expect(page.locator(".msg.note")).to_contain_text("promised the jar")
    expect(page.locator("#notices .notice")).to_have_count(0)
    # Canned response by shortcut, placeholders filled.
    reply_box(page).fill("/sorry-delay")
    reply_box(page).press("Tab")
    expect(reply_box(page)).to_have_value("Hi Ana, I'm sorry for the wait.")
    reply_box(page).fill("")
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.evaluate("(t => { t.scrollTop = t.scrollHeight; })(document.getElementById('timeline'))")
    page.screenshot(path=str(DOCS / "thread.png"), full_page=True)
    # Keyboard: "a" assigns the case to me.
    page.locator("body").click(position={"x": 5, "y": 200})
    page.keyboard.press("a")
    expect(page.locator("#case-panel [data-assignee]")).to_contain_text("Alex Agent")

    phone = browser_contexts(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    ).new_page()
    login(phone, asgi_server, "agent1", "agent1-demo-pass")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.goto(f"{asgi_server}/inbox/case/{ana_case.pk}/")
    expect(phone.get_by_label("Message", exact=True)).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_screen_pop_sla_warning_and_mention_notices(asgi_server, browser_contexts):
    from django.contrib.auth import get_user_model

    from conversations import realtime

    seed()
    ana_case = case_of("Ana Silva")
    page = browser_contexts().new_page()
    login(page, asgi_server, "agent1", "agent1-demo-pass")

    # The voice channel's screen pop (conversations.calls.screen_pop_payload's shape).
    pop = {
        "customer": {"id": ana_case.thread.customer_id, "name": "Ana Silva", "identities": []},
        "case": {"id": ana_case.pk, "status": "open", "assignee": None},
        "messages": [
            {"channel": "whatsapp", "direction": "in", "kind": "text", "text": "The jar never came"}
        ],
        "call": {"call_sid": "CA1", "from": "+14155550123", "to": "+15555550102", "message": 1, "thread": 1},
    }
    off_loop(realtime.publish, "call.incoming", pop, case=ana_case)
    notice = page.locator(".notice.call-pop")
    expect(notice).to_contain_text("Incoming call from Ana Silva (+14155550123)")
    expect(notice).to_contain_text("The jar never came")
    expect(notice.get_by_role("link")).to_have_attribute("href", f"/inbox/case/{ana_case.pk}/")

    # The KPI app's SLA warning.
    off_loop(
        realtime.publish,
        "sla.warning",
        {"case": ana_case.pk, "thread": 1, "target": "first_response", "seconds_left": 600},
        case=ana_case,
    )
    expect(page.locator(".notice.sla")).to_contain_text("First response due in 10 min")

    # A colleague mentions me in a note: only I am notified.
    blair = get_user_model().objects.get(username="agent2")
    off_loop(case_note_add, case=ana_case, author_user=blair, body="@agent1 can you call her back?")
    expect(page.locator(".notice", has_text="mentioned you")).to_contain_text("can you call her back?")
    expect(page.locator("#mentions-link .count")).to_have_text("1")
