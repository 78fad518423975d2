"""Issue 19's inbox conventions in Chromium: search from any view, the newest message above
a sticky reply box, a live sidebar after resolving, counts per view and the unread title,
the notification permission flow, attachments by picker and by drop, the emoji picker."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from conversations.cases import assign_case, case_note_add
from conversations.models import Case, Message
from tests.browser.conftest import login, off_loop
from tests.browser.test_inbox_e2e import DOCS, case_of, post_signed, reply_box, seed
from tests.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def in_viewport(page, selector: str) -> bool:
    return page.evaluate(
        """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
        return r.bottom > 0 && r.top < window.innerHeight && r.height > 0; }""",
        selector,
    )


def test_search_from_any_view_finds_every_case_and_phones_in_any_format(asgi_server, browser_contexts):
    seed()
    ana = case_of("Ana Silva")
    resolved = Case.objects.filter(thread=ana.thread, status="resolved").order_by("pk").first()
    page = browser_contexts().new_page()
    login(page, asgi_server, "agent1", "agent1-demo-pass")
    page.get_by_role("link", name="Mine").click()
    expect(page.locator('.views [aria-current="page"]')).to_contain_text("Mine")
    page.wait_for_selector("body[data-live='1']")
    page.keyboard.press("/")
    expect(page.locator("#inbox-search")).to_be_focused()
    page.keyboard.type("(415) 555-0123")
    page.keyboard.press("Enter")
    expect(page.locator('.views [aria-current="page"]')).to_contain_text("All")
    expect(page.locator(f'.case-row[data-case="{ana.pk}"]')).to_be_visible()
    if resolved is not None:
        expect(page.locator(f'.case-row[data-case="{resolved.pk}"]')).to_be_visible()
    expect(page.locator(".case-row", has_text="Dee Novak")).to_have_count(0)
    page.get_by_role("link", name="Clear the search").click()
    expect(page.locator('.views [aria-current="page"]')).to_contain_text("Mine")


def test_case_opens_at_the_newest_message_above_a_sticky_reply_box(asgi_server, browser_contexts):
    seed()
    dee = case_of("Dee Novak")
    start = timezone.now() - timedelta(hours=3)
    for n in range(40):
        Message.objects.create(
            thread=dee.thread,
            case=dee,
            channel=dee.origin_channel,
            direction="in" if n % 2 else "out",
            author="customer" if n % 2 else "agent",
            status="" if n % 2 else "read",
            body=f"Line {n} about order 771",
            created_at=start + timedelta(minutes=n),
        )
    newest = Message.objects.create(
        thread=dee.thread,
        case=dee,
        channel=dee.origin_channel,
        body="The newest words",
        created_at=timezone.now(),
    )
    for viewport in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
        page = browser_contexts(viewport=viewport, is_mobile=viewport["width"] < 500).new_page()
        login(page, asgi_server, "agent1", "agent1-demo-pass")
        page.goto(f"{asgi_server}/inbox/case/{dee.pk}/")
        page.wait_for_selector("body[data-live='1']")
        page.wait_for_timeout(300)
        assert in_viewport(page, f"#m-{newest.pk}"), viewport
        assert in_viewport(page, "#reply-body"), viewport
        # Scrolled back up, the reply box is still there.
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(100)
        assert in_viewport(page, "#reply-body"), viewport
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


def test_sidebar_and_header_follow_a_resolve_live_with_undo(asgi_server, browser_contexts):
    seed()
    dee = case_of("Dee Novak")
    alex = browser_contexts().new_page()
    login(alex, asgi_server, "agent1", "agent1-demo-pass")
    alex.goto(f"{asgi_server}/inbox/case/{dee.pk}/")
    colleague = browser_contexts().new_page()
    login(colleague, asgi_server, "agent2", "agent2-demo-pass")
    colleague.goto(f"{asgi_server}/inbox/case/{dee.pk}/")
    for page in (alex, colleague):
        page.wait_for_selector("body[data-live='1']")
        expect(page.locator(".prev-cases li[aria-current] .status")).to_have_text("Open")

    # Priority applies at once, and Undo puts it back.
    alex.get_by_label("Priority").select_option(label="High")
    expect(colleague.locator("#timeline")).to_contain_text("priority", ignore_case=True)
    alex.locator(".notice.undo").get_by_role("button", name="Undo").click()
    expect(alex.get_by_label("Priority")).to_have_value(str(dee.priority))

    alex.get_by_role("button", name="Resolve").click()
    for page in (alex, colleague):
        expect(page.locator("#case-panel h1 .status")).to_have_text("Resolved")
        expect(page.locator(".prev-cases li[aria-current] .status")).to_have_text("Resolved")
    dee.refresh_from_db()
    assert dee.status == "resolved" and dee.priority == Case.objects.get(pk=dee.pk).priority


def test_counts_per_view_and_unread_title_stay_current(asgi_server, browser_contexts):
    seed()
    page = browser_contexts().new_page()
    login(page, asgi_server, "agent1", "agent1-demo-pass")
    mine = page.locator('[data-count="mine"]')
    before = int(mine.inner_text())
    assert page.title().startswith("(")  # the demo's cases are unread for a new agent
    alex = get_user_model().objects.get(username="agent1")
    blair = get_user_model().objects.get(username="agent2")
    target = Case.objects.filter(status="open", assignee__isnull=True).exclude(team__isnull=False).first()
    target = target or Case.objects.filter(status="open").exclude(assignee=alex).first()
    off_loop(assign_case, case=target, assignee=alex, by=blair)
    expect(mine).to_have_text(str(before + 1))
    unread_before = int(page.title().split(")")[0].strip("("))
    page.goto(f"{asgi_server}/inbox/case/{target.pk}/")
    page.wait_for_selector("body[data-live='1']")
    page.goto(f"{asgi_server}/inbox/")
    assert int(page.title().split(")")[0].strip("(")) == unread_before - 1


def test_case_page_title_gets_the_unread_count_after_it_loads(asgi_server, browser_contexts):
    """The case page is served without the queue's counts; its tab title gets them at once."""
    seed()
    page = browser_contexts().new_page()
    login(page, asgi_server, "agent1", "agent1-demo-pass")
    unread = int(page.title().split(")")[0].strip("("))
    opened = Case.objects.filter(status="open").order_by("pk").first()
    response = page.goto(f"{asgi_server}/inbox/case/{opened.pk}/")
    assert "<title>(" not in response.text()  # nothing counted in the served HTML
    # Opening it marked it read: one unread fewer, counted after the page loaded.
    expect(page).to_have_title(re.compile(rf"^\({unread - 1}\) "))


def test_the_outreach_box_arrives_after_the_page_and_a_failed_load_can_be_retried(
    asgi_server, browser_contexts
):
    seed()
    page = browser_contexts().new_page()
    login(page, asgi_server, "agent1", "agent1-demo-pass")
    opened = Case.objects.filter(status="open").order_by("pk").first()
    box_url = f"**/outreach/cases/{opened.pk}/box/"
    page.route(box_url, lambda route: route.abort())
    page.goto(f"{asgi_server}/inbox/case/{opened.pk}/")
    box = page.locator("section.outreach")
    expect(box).to_contain_text("This box could not be loaded.")
    expect(page.locator("#reply-form")).to_be_visible()  # the rest of the page works
    page.unroute(box_url)
    box.get_by_role("button", name="Try again").click()
    expect(page.locator("section.outreach[data-outreach]")).to_have_count(1)
    page.get_by_text("Start an outreach").click()
    expect(page.locator("form.outreach-form button[type=submit]")).to_be_visible()
    expect(page.locator("[data-fragment]")).to_have_count(0)


def test_notification_permission_flow_and_alerts(asgi_server, browser_contexts, live_worker):
    api = seed()
    # Not allowed by the browser: the agent is told, nothing is switched on.
    refused = browser_contexts().new_page()
    login(refused, asgi_server, "agent1", "agent1-demo-pass")
    refused.evaluate("() => { Notification.requestPermission = async () => 'denied'; }")
    refused.get_by_role("button", name="Notifications off").click()
    expect(refused.locator(".notice-error")).to_contain_text("Notifications stay off")
    expect(refused.locator("body")).to_have_attribute("data-notify", "off")

    context = browser_contexts(permissions=["notifications"])
    page = context.new_page()
    login(page, asgi_server, "agent1", "agent1-demo-pass")
    page.get_by_role("button", name="Notifications off").click()
    expect(page.get_by_role("button", name="Notifications on")).to_have_attribute("aria-pressed", "true")
    # The choice survives a reload.
    page.reload()
    page.wait_for_selector("body[data-live='1']")
    expect(page.get_by_role("button", name="Notifications on")).to_be_visible()

    # A new case arrives: notified (with the chime).
    answer = post_signed(
        asgi_server,
        api,
        {"external_id": "notify-1", "from": {"email": "nia@example.com", "name": "Nia"}, "text": "Hello?"},
    )
    assert answer.status_code == 200
    wait_for(lambda: Message.objects.filter(body="Hello?").exists())
    expect(page.locator("body")).to_have_attribute(
        "data-last-notification", f"New case #{_newest_case()}", timeout=20000
    )

    # A colleague mentions me.
    blair = get_user_model().objects.get(username="agent2")
    ana = case_of("Ana Silva")
    off_loop(case_note_add, case=ana, author_user=blair, body="@agent1 look at this one")
    expect(page.locator("body")).to_have_attribute("data-last-notification", "Blair Agent mentioned you")

    # A case given to me by someone else.
    alex = get_user_model().objects.get(username="agent1")
    dee = case_of("Dee Novak")
    off_loop(assign_case, case=dee, assignee=alex, by=blair)
    expect(page.locator("body")).to_have_attribute("data-last-notification", f"Case #{dee.pk} is yours now")

    # Switched off again.
    page.get_by_role("button", name="Notifications on").click()
    expect(page.locator("body")).to_have_attribute("data-notify", "off")


def _newest_case() -> int:
    return Case.objects.order_by("-pk").values_list("pk", flat=True).first()


def test_attachments_by_picker_and_drop_with_clear_errors(asgi_server, browser_contexts, settings, tmp_path):
    seed()
    dee = case_of("Dee Novak")
    page = browser_contexts().new_page()
    login(page, asgi_server, "agent1", "agent1-demo-pass")
    page.goto(f"{asgi_server}/inbox/case/{dee.pk}/")
    page.wait_for_selector("body[data-live='1']")
    expect(page.locator("#files-rule")).to_contain_text("Up to 10.0")

    page.set_input_files(
        "#reply-files", files=[{"name": "label.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 x"}]
    )
    # Dropped onto the reply box.
    page.evaluate(
        """() => { const dt = new DataTransfer();
        dt.items.add(new File(["hello"], "notes.txt", { type: "text/plain" }));
        const box = document.querySelector(".reply");
        box.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
        box.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true })); }"""
    )
    expect(page.locator("#reply-files-list li")).to_have_count(2)

    # Too big for the limit: said before sending, nothing goes out.
    page.evaluate("document.getElementById('reply-files').dataset.maxBytes = '1'")
    reply_box(page).fill("Here are the label and the notes")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#reply-error")).to_contain_text("too big")
    assert not Message.objects.filter(body="Here are the label and the notes").exists()
    # Removing the problem: reload the limit and send both.
    page.evaluate("document.getElementById('reply-files').dataset.maxBytes = '10485760'")
    page.get_by_role("button", name="Remove notes.txt").click()
    page.evaluate(
        """() => { const dt = new DataTransfer();
        dt.items.add(new File(["hello"], "notes.txt", { type: "text/plain" }));
        const drop = new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true });
        document.querySelector(".reply").dispatchEvent(drop); }"""
    )
    expect(page.locator("#reply-error")).to_be_hidden()
    page.get_by_role("button", name="Send").click()
    bubble = page.locator(".msg.out", has_text="Here are the label and the notes")
    expect(bubble.locator(".attachments li")).to_have_count(2)
    expect(bubble).to_contain_text("label.pdf")
    expect(page.locator("#reply-files-list li")).to_have_count(0)
    message = Message.objects.get(body="Here are the label and the notes")
    assert sorted(a["name"] for a in message.attachments) == ["label.pdf", "notes.txt"]

    # The emoji picker, from our own list.
    page.get_by_role("button", name="Insert an emoji").click()
    page.get_by_placeholder("Search emoji").fill("grinning face with smiling eyes")
    page.get_by_role("option", name="grinning face with smiling eyes").click()
    expect(reply_box(page)).to_have_value("😁")


def test_dark_theme_screenshot(asgi_server, browser_contexts):
    seed()
    page = browser_contexts(color_scheme="dark").new_page()
    login(page, asgi_server, "supervisor", "supervisor-demo-pass")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 20, 27)"
    expect(page.get_by_role("link", name="Dashboard")).to_be_visible()
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    page.screenshot(path=str(DOCS / "inbox-dark.png"))
