"""End to end in Chromium: the chat bubble on a customer's website, talking to the inbox.

The host page is served from a second local origin (its own port), as a shop's
site would be, and embeds the chat with the one-line snippet of docs/webchat.md.
"""

import io
import os
import re
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from channels_adapters.base import hmac_sha256_hex
from channels_adapters.models import Channel, ChannelKind
from conversations.models import Message
from customers.models import Customer
from tests.browser.conftest import login, off_loop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

_ROOT = Path(__file__).resolve().parents[2]
DOCS = _ROOT / ("docs" if os.environ.get("HELPDESK_UPDATE_SCREENSHOTS") else "test-results")
DOCS.mkdir(exist_ok=True)
RESULTS = _ROOT / "test-results"
RESULTS.mkdir(exist_ok=True)

IDENTITY_SECRET = "e2e-identity-secret-0123456789abcdef"
COLOR = "#0a7d5a"

# The host's own CSS, as hostile as a theme can be: none of it may reach the widget.
HOSTILE_CSS = """
* { font-size: 40px !important; box-sizing: content-box !important; }
button { background: #ff00ff !important; width: 300px !important; border: 9px solid red !important; }
iframe { display: none !important; }
div { display: none !important; position: static !important; }
"""


class HostSite:
    """A tiny web server on another port: the company's website, another origin."""

    def __init__(self):
        self.pages: dict[str, str] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's spelling
                body = site.pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass  # keep pytest's output for the tests

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Every visitor here comes from 127.0.0.1: one test's sessions and messages
    # must not spend the next one's per-address budget.
    _clear_rate_limits()
    yield


@pytest.fixture
def host_site():
    site = HostSite().start()
    yield site
    site.stop()


@pytest.fixture
def other_site():
    site = HostSite().start()
    yield site
    site.stop()


def seed():
    off_loop(call_command, "seed_demo", stdout=io.StringIO())


def webchat_channel(*origins, **settings) -> Channel:
    return Channel.objects.create(
        kind=ChannelKind.WEBCHAT,
        name="Shop website",
        credentials={"identity_secret": IDENTITY_SECRET},
        settings={
            "allowed_origins": list(origins),
            "color": COLOR,
            "greeting": "Hi! Ask us anything.",
            **settings,
        },
    )


def host_page(server: str, channel: Channel, before: str = "", title: str = "Teapot shop") -> str:
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{HOSTILE_CSS}</style></head>
<body><h1>{title}</h1><p>Our finest teapots.</p>
{before}
<script src="{server}/widget/{channel.key}.js" async></script>
</body></html>"""


def widget(page, channel):
    return page.locator(f"#helpdesk-widget-{channel.key}")


def launcher(page, channel):
    return widget(page, channel).locator("button.launcher")


def chat(page, channel):
    return page.frame_locator(f"#helpdesk-widget-{channel.key} iframe")


def open_chat(page, channel, *, state="chat"):
    launcher(page, channel).click()
    frame = chat(page, channel)
    expect(frame.locator(f"body[data-state='{state}']")).to_be_attached()
    return frame


def composer(frame, label="Message"):
    return frame.get_by_label(label, exact=True)


def send(frame, text, label="Message"):
    composer(frame, label).fill(text)
    composer(frame, label).press("Enter")
    bubble = frame.locator(".msg.mine", has_text=text)
    expect(bubble).to_be_visible()
    # Stored: the bubble carries the server's id once the server has it.
    expect(bubble).to_have_attribute("data-id", re.compile(r"^\d+$"))
    return bubble


def eventually(page, predicate, timeout_ms=10000):
    """Wait for something only Python can see (frames a page heard), letting Playwright's loop run."""
    for _ in range(timeout_ms // 100):
        if predicate():
            return
        page.wait_for_timeout(100)
    assert predicate(), "condition not met in time"


def agent_on_case(browser_contexts, server: str, case_id: int, *, page=None):
    """agent1 logged in, on the case, with live updates on."""
    agent = page or browser_contexts().new_page()
    login(agent, server, "agent1", "agent1-demo-pass")
    agent.goto(f"{server}/inbox/case/{case_id}/")
    agent.wait_for_selector("body[data-live='1']")
    return agent


def agent_replies(agent, text: str) -> None:
    reply = agent.get_by_label("Message", exact=True)
    reply.fill(text)
    reply.press("Control+Enter")


def tiny_png(width=24, height=16, rgb=(10, 125, 90)) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_visitor_and_agent_talk_live_with_typing_seen_and_history_after_reload(
    asgi_server, browser_contexts, host_site, live_worker
):
    seed()
    channel = webchat_channel(host_site.url)
    host_site.pages["/"] = host_page(asgi_server, channel)

    agent_context = browser_contexts()
    inbox = agent_context.new_page()
    login(inbox, asgi_server, "agent1", "agent1-demo-pass")
    inbox.evaluate("window.__sameDocument = true")

    visitor = browser_contexts().new_page()
    visitor.goto(host_site.url + "/")
    button = launcher(visitor, channel)
    expect(button).to_have_attribute("aria-label", "Chat with us")
    expect(button).to_have_attribute("aria-expanded", "false")
    # The host page's CSS does not reach into the widget.
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(10, 125, 90)"
    assert button.evaluate("b => getComputedStyle(b).width") == "60px"
    # Keyboard: the launcher is reachable and opens with Enter.
    button.focus()
    visitor.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(button).to_have_attribute("aria-label", "Close the chat")
    frame = chat(visitor, channel)
    expect(frame.locator("body[data-state='chat']")).to_be_attached()
    expect(frame.locator("#greeting")).to_have_text("Hi! Ask us anything.")
    expect(composer(frame)).to_be_focused()
    # Every control has a name a screen reader can say.
    unnamed = frame.locator("body").evaluate(
        """() => [...document.querySelectorAll('input, textarea, button, select')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.textContent.trim())
            .map(el => el.outerHTML)"""
    )
    assert unnamed == []

    send(frame, "Hi, is the blue teapot back in stock? https://shop.example/teapots/blue.")
    link = frame.locator(".msg.mine a")
    expect(link).to_have_attribute("href", "https://shop.example/teapots/blue")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(link).to_have_attribute("target", "_blank")

    # The agent's inbox shows it live, without a reload.
    row = inbox.locator(".case-row", has_text="blue teapot back in stock")
    expect(row).to_be_visible()
    assert inbox.evaluate("window.__sameDocument") is True
    message = Message.objects.get(body__startswith="Hi, is the blue teapot")
    assert message.channel_id == channel.pk and message.direction == "in"
    case = message.case
    # The visitor is told their case number.
    expect(frame.locator("#case-number")).to_have_text(f"Your case #{case.pk}")

    thread = agent_context.new_page()
    thread.goto(f"{asgi_server}/inbox/case/{case.pk}/")
    thread.wait_for_selector("body[data-live='1']")
    expect(thread.locator("#timeline")).to_contain_text("blue teapot back in stock")

    # The agent has had the message on screen: the visitor sees "Seen".
    expect(frame.locator(".msg.mine .seen")).to_have_text("Seen")

    # Visitor typing reaches the agent's thread.
    customer_typing = thread.locator("#customer-typing")
    expect(customer_typing).to_be_hidden()
    composer(frame).press_sequentially("And the lid")
    expect(customer_typing).to_have_text("The customer is typing…")
    composer(frame).fill("")

    # Agent typing reaches the visitor.
    reply = thread.get_by_label("Message", exact=True)
    reply.press_sequentially("Yes! It is back")
    expect(frame.locator("#typing")).to_be_visible()
    expect(frame.locator("#typing")).to_contain_text("Agent is typing…")

    reply.fill("Yes! It is back in stock since this morning.")
    reply.press("Control+Enter")
    ours = frame.locator(".msg.ours", has_text="back in stock since this morning")
    expect(ours).to_be_visible(timeout=20000)
    expect(frame.locator("#typing")).to_be_hidden()
    expect(ours.locator(".author")).not_to_be_empty()

    # A reload keeps the whole conversation (the token lives in the frame's storage).
    visitor.reload()
    frame = open_chat(visitor, channel)
    expect(frame.locator(".msg.mine", has_text="blue teapot back in stock")).to_be_visible()
    expect(frame.locator(".msg.ours", has_text="back in stock since this morning")).to_be_visible()
    assert frame.locator(".msg").count() == 2
    expect(widget(visitor, channel).locator(".panel.open")).to_have_css("opacity", "1")
    visitor.screenshot(path=str(DOCS / "webchat.png"))


def test_unread_badge_and_close_from_the_panel(asgi_server, browser_contexts, host_site, live_worker):
    seed()
    channel = webchat_channel(host_site.url)
    host_site.pages["/"] = host_page(asgi_server, channel)
    visitor = browser_contexts().new_page()
    visitor.goto(host_site.url + "/")
    frame = open_chat(visitor, channel)
    # Shift+Enter is a new line; Enter sends.
    composer(frame).fill("Do you ship")
    composer(frame).press("Shift+Enter")
    composer(frame).press_sequentially("to Portugal?")
    expect(composer(frame)).to_have_value("Do you ship\nto Portugal?")
    expect(frame.locator(".msg")).to_have_count(0)
    composer(frame).press("Enter")
    expect(frame.locator(".msg.mine[data-id] .bubble")).to_have_text("Do you ship\nto Portugal?")
    expect(composer(frame)).to_have_value("")
    # Closed from the panel's own button: the launcher takes the focus back.
    frame.get_by_role("button", name="Close chat").click()
    expect(launcher(visitor, channel)).to_have_attribute("aria-expanded", "false")
    expect(launcher(visitor, channel)).to_be_focused()

    case = Message.objects.get(body="Do you ship\nto Portugal?").case
    agent = agent_on_case(browser_contexts, asgi_server, case.pk)
    agent_replies(agent, 'We do, in 3 to 5 days. <img src=x onerror="parent.__xss=1"> javascript:alert(1)')

    badge = widget(visitor, channel).locator(".badge")
    expect(badge).to_have_text("1", timeout=20000)
    expect(launcher(visitor, channel)).to_have_attribute("aria-label", "Chat with us (1)")
    launcher(visitor, channel).click()
    expect(badge).to_be_hidden()
    ours = frame.locator(".msg.ours", has_text="in 3 to 5 days")
    expect(ours).to_be_visible()
    # Text stays text: no element made of it, no link that is not http(s).
    expect(ours.locator(".bubble")).to_contain_text('<img src=x onerror="parent.__xss=1">')
    expect(ours.locator(".bubble *")).to_have_count(0)
    assert frame.locator("body").evaluate("() => window.__xss") is None
    # Read on screen: a reload does not badge it again.
    visitor.reload()
    expect(launcher(visitor, channel)).to_be_visible()
    expect(frame.locator(".msg.ours", has_text="in 3 to 5 days")).to_be_attached()
    expect(widget(visitor, channel).locator(".badge")).to_be_hidden()


def test_attachment_image_is_previewed_and_a_refused_type_is_not_sent(
    asgi_server, browser_contexts, host_site
):
    seed()
    channel = webchat_channel(host_site.url)
    host_site.pages["/"] = host_page(asgi_server, channel)
    visitor = browser_contexts().new_page()
    visitor.goto(host_site.url + "/")
    frame = open_chat(visitor, channel)

    frame.locator("#file").set_input_files(
        files=[{"name": "setup.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ" + b"\0" * 64}]
    )
    expect(frame.locator("#banner")).to_contain_text("That type of file can't be sent here.")
    assert not Message.objects.filter(channel=channel).exists()

    frame.locator("#file").set_input_files(
        files=[{"name": "crack.png", "mimeType": "image/png", "buffer": tiny_png()}]
    )
    image = frame.locator(".msg.mine .attachment.image img")
    expect(image).to_be_visible()
    expect(image).to_have_attribute("alt", "Image: crack.png")
    # Really fetched from the signed link, and decoded.
    expect(image).to_have_js_property("naturalWidth", 24)
    stored = Message.objects.get(channel=channel)
    assert [a["name"] for a in stored.attachments] == ["crack.png"]
    # The link is signed: without its signature the file is not served.
    src = image.get_attribute("src")
    assert "t=" in src
    unsigned = httpx.get(src.split("?")[0])
    assert unsigned.status_code in (403, 404)

    # Not an image: a link to the file, with its name and size.
    frame.locator("#file").set_input_files(
        files=[{"name": "receipt.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n%%EOF\n"}]
    )
    link = frame.locator(".msg.mine .attachment.file a")
    expect(link).to_contain_text("receipt.pdf")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    assert httpx.get(link.get_attribute("href")).content == b"%PDF-1.4\n%%EOF\n"


def test_prechat_email_links_to_the_customer_without_showing_their_history(
    asgi_server, browser_contexts, host_site
):
    seed()
    ana = Customer.objects.get(name="Ana Silva")
    channel = webchat_channel(
        host_site.url, prechat={"name": "optional", "email": "required", "phone": "off"}
    )
    host_site.pages["/"] = host_page(asgi_server, channel)
    visitor = browser_contexts().new_page()
    visitor.goto(host_site.url + "/")
    frame = open_chat(visitor, channel, state="prechat")
    expect(composer(frame)).to_be_hidden()
    expect(frame.get_by_label("Name (optional)")).to_be_visible()
    expect(frame.get_by_label("Phone")).to_have_count(0)

    frame.get_by_role("button", name="Start chat").click()
    expect(frame.locator("#prechat-email-error")).to_have_text("This field is required.")
    frame.get_by_label("Email").fill("not-an-email")
    frame.get_by_role("button", name="Start chat").click()
    expect(frame.locator("#prechat-email-error")).to_have_text("Enter a valid email address.")

    frame.get_by_label("Name (optional)").fill("Ana")
    frame.get_by_label("Email").fill("ana.silva@example.com")
    frame.get_by_role("button", name="Start chat").click()
    expect(frame.locator("body[data-state='chat']")).to_be_attached()
    send(frame, "Still waiting for that jar")

    message = Message.objects.get(body="Still waiting for that jar")
    assert message.thread.customer_id == ana.pk
    # Ana's older messages (Facebook, WhatsApp, the call) are not the visitor's to see.
    older = list(ana.thread.messages.exclude(pk=message.pk).exclude(body="").values_list("body", flat=True))
    assert older
    expect(frame.locator(".msg")).to_have_count(1)
    visitor.reload()
    frame = open_chat(visitor, channel)
    expect(frame.locator(".msg")).to_have_count(1)
    text = frame.locator("#messages").inner_text()
    for body in older:
        assert body[:30] not in text


def verified_page(server, channel, user, hash_):
    import json

    preset = (
        f"<script>window.HelpdeskWidget = {{user: {json.dumps(user)}, hash: {json.dumps(hash_)}}};</script>"
    )
    return host_page(server, channel, before=preset)


def test_verified_visitor_sees_their_history_on_another_device_and_a_forged_hash_is_refused(
    asgi_server, browser_contexts, host_site
):
    seed()
    channel = webchat_channel(host_site.url)
    user = {"identifier": "42", "email": "lee@example.com", "name": "Lee Park"}
    good = hmac_sha256_hex(IDENTITY_SECRET, b"42")
    host_site.pages["/"] = verified_page(asgi_server, channel, user, good)
    host_site.pages["/anonymous"] = host_page(asgi_server, channel)
    host_site.pages["/forged"] = verified_page(asgi_server, channel, user, hmac_sha256_hex("guess", b"42"))

    laptop = browser_contexts().new_page()
    laptop.goto(host_site.url + "/")
    frame = open_chat(laptop, channel)
    send(frame, "My order 9001 has the wrong lid")
    message = Message.objects.get(body="My order 9001 has the wrong lid")
    assert message.identity.address == f"{channel.key}:u:42"

    # Another device: anonymous first, then the site logs Lee in with setUser.
    phone = browser_contexts().new_page()
    phone.goto(host_site.url + "/anonymous")
    frame = open_chat(phone, channel)
    expect(frame.locator(".msg")).to_have_count(0)
    phone.evaluate(
        "([user, hash]) => window.HelpdeskWidget.setUser(user, hash)",
        [user, good],
    )
    expect(frame.locator(".msg.mine", has_text="wrong lid")).to_be_visible()
    # Signed out on the site: the next person at this phone starts a conversation of their own.
    phone.evaluate("() => window.HelpdeskWidget.setUser(null)")
    expect(frame.locator(".msg")).to_have_count(0)
    phone.reload()
    frame = open_chat(phone, channel)
    send(frame, "Someone else now")
    expect(frame.locator(".msg")).to_have_count(1)
    assert Message.objects.get(body="Someone else now").identity.address.startswith(f"{channel.key}:v:")

    # A forged hash: refused, and nothing of Lee's shows.
    mallory = browser_contexts().new_page()
    mallory.goto(host_site.url + "/forged")
    launcher(mallory, channel).click()
    frame = chat(mallory, channel)
    expect(frame.locator("#banner")).to_be_visible()
    expect(frame.locator("body[data-state='blocked']")).to_be_attached()
    expect(composer(frame)).to_be_hidden()
    assert "wrong lid" not in frame.locator("body").inner_text()


def test_a_site_not_on_the_list_gets_no_chat(asgi_server, browser_contexts, host_site, other_site):
    seed()
    channel = webchat_channel(host_site.url)
    other_site.pages["/"] = host_page(asgi_server, channel, title="Copycat shop")
    # A page that skips the loader and frames the panel directly, lying about its origin.
    frame_url = f"{asgi_server}/widget/{channel.key}/frame/?origin={host_site.url}&lang=en"
    other_site.pages["/framed"] = (
        f'<!doctype html><title>x</title><iframe id="direct" src="{frame_url}"></iframe>'
    )

    page = browser_contexts().new_page()
    loader_status = []
    page.on(
        "response", lambda r: loader_status.append(r.status) if r.url.endswith(f"{channel.key}.js") else None
    )
    page.goto(other_site.url + "/")
    page.wait_for_load_state("networkidle")
    assert loader_status == [403]
    expect(widget(page, channel)).to_have_count(0)

    page.goto(other_site.url + "/framed")
    page.wait_for_load_state("networkidle")
    expect(page.frame_locator("#direct").locator("#composer")).to_have_count(0)

    # The same frame asked for by the allowed origin does render.
    assert httpx.get(frame_url).status_code == 200
    refused = httpx.get(f"{asgi_server}/widget/{channel.key}/frame/?origin={other_site.url}&lang=en")
    assert refused.status_code == 403


def test_phone_layout_fills_the_screen_and_speaks_spanish(asgi_server, browser_contexts, host_site):
    assert (_ROOT / "locale/es/LC_MESSAGES/django.mo").exists(), (
        "The Spanish catalog is not compiled: run `make setup` (it needs GNU gettext's msgfmt)."
    )
    seed()
    channel = webchat_channel(host_site.url)
    host_site.pages["/"] = host_page(asgi_server, channel)
    context = browser_contexts(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="es-ES"
    )
    visitor = context.new_page()
    full_screen = {"x": 0, "y": 0, "width": 390, "height": 844}
    visitor.goto(host_site.url + "/")
    expect(launcher(visitor, channel)).to_have_attribute("aria-label", "Chatea con nosotros")
    frame = open_chat(visitor, channel)
    expect(frame.locator("html")).to_have_attribute("lang", "es")
    expect(composer(frame, "Mensaje")).to_have_attribute("placeholder", "Escribe tu mensaje…")

    iframe = widget(visitor, channel).locator("iframe")
    # Once the opening slide has finished.
    eventually(visitor, lambda: {k: round(v) for k, v in iframe.bounding_box().items()} == full_screen)
    assert {k: round(v) for k, v in iframe.bounding_box().items()} == full_screen
    # Full screen: the launcher steps aside and the panel's own close button is there.
    expect(launcher(visitor, channel)).to_be_hidden()
    send(frame, "Hola, ¿tenéis la tetera azul?", label="Mensaje")
    frame_width = frame.locator("body").evaluate("b => [document.documentElement.scrollWidth, innerWidth]")
    assert frame_width[0] <= frame_width[1] == 390
    composer_box = composer(frame, "Mensaje").bounding_box()
    assert composer_box["y"] + composer_box["height"] <= 844
    assert visitor.evaluate("document.documentElement.scrollWidth") <= 390
    visitor.screenshot(path=str(RESULTS / "webchat-phone.png"))

    frame.get_by_role("button", name="Cerrar el chat").click()
    expect(launcher(visitor, channel)).to_be_visible()


def test_without_websockets_the_panel_falls_back_to_long_polling(
    asgi_server, browser_contexts, host_site, live_worker
):
    assert (_ROOT / "locale/es/LC_MESSAGES/django.mo").exists(), (
        "The Spanish catalog is not compiled: run `make setup` (it needs GNU gettext's msgfmt)."
    )
    seed()
    channel = webchat_channel(host_site.url)
    host_site.pages["/"] = host_page(asgi_server, channel)
    context = browser_contexts()
    # A network that eats WebSockets (some corporate proxies do).
    refused_sockets = []

    def refuse(ws):
        refused_sockets.append(ws.url)
        ws.close(code=1011, reason="blocked")

    context.route_web_socket(re.compile(r"/ws/widget/"), refuse)
    polls = []
    context.on("request", lambda r: polls.append(r.url) if "/api/messages?after=" in r.url else None)
    visitor = context.new_page()
    visitor.goto(host_site.url + "/")
    frame = open_chat(visitor, channel)
    send(frame, "Is anyone there? My network is strict.")
    eventually(visitor, lambda: any("wait=25" in url for url in polls))
    assert len(refused_sockets) >= 2
    expect(frame.locator("#connection")).to_be_hidden()

    case = Message.objects.get(body__startswith="Is anyone there?").case
    agent = agent_on_case(browser_contexts, asgi_server, case.pk)
    agent_replies(agent, "Yes, we hear you loud and clear.")
    # Delivered by the long-poll that was waiting, well before its 25 s were up.
    expect(frame.locator(".msg.ours", has_text="loud and clear")).to_be_visible(timeout=15000)
    assert frame.locator(".msg.mine", has_text="Is anyone there?").count() == 1


def test_a_visitor_who_left_is_answered_by_email_on_the_same_thread(
    asgi_server, browser_contexts, host_site, live_worker
):
    from django.core.cache import cache

    from channels_adapters.webchat.presence import presence_get
    from tests.channels_adapters.email_support import SmtpServer, email_channel

    seed()
    smtp = SmtpServer().start()
    try:
        mailbox = email_channel(smtp_port=smtp.port)
        channel = webchat_channel(
            host_site.url, prechat={"name": "optional", "email": "required"}, email_channel=mailbox.pk
        )
        host_site.pages["/"] = host_page(asgi_server, channel)
        context = browser_contexts()
        visitor = context.new_page()
        visitor.goto(host_site.url + "/")
        frame = open_chat(visitor, channel, state="prechat")
        frame.get_by_label("Email").fill("rosa@example.com")
        frame.get_by_role("button", name="Start chat").click()
        expect(frame.locator("body[data-state='chat']")).to_be_attached()
        send(frame, "Please send me the invoice for order 5150")
        message = Message.objects.get(body__startswith="Please send me the invoice")
        address = message.identity.address

        # The visitor closes the tab; HELPDESK_WEBCHAT_OFFLINE_AFTER_SECONDS later
        # their presence has run out (removed here instead of waiting minutes).
        agent = browser_contexts().new_page()
        before = presence_get(address=address)["seen_at"]
        visitor.close()
        # The socket's goodbye refreshes presence (a reload is not leaving): wait for it,
        # then let it run out.
        eventually(agent, lambda: presence_get(address=address)["seen_at"] > before)
        cache.delete(f"webchat:presence:{address}")

        agent_on_case(browser_contexts, asgi_server, message.case_id, page=agent)
        # The reply box defaults to the email the visitor gave.
        expect(agent.get_by_label("Send on")).to_have_value(str(mailbox.pk))
        agent_replies(agent, "Here it is, Rosa: invoice 5150 is attached to your account.")
        eventually(agent, lambda: len(smtp.received) == 1, timeout_ms=20000)
        mail = smtp.received[0]
        assert mail.rcpt_tos == ["rosa@example.com"]
        assert "invoice 5150 is attached" in mail.message.get_body(("plain",)).get_content()

        # One thread for the agent: the emailed answer follows the chat.
        answer = Message.objects.get(body__startswith="Here it is, Rosa")
        assert answer.thread_id == message.thread_id and answer.channel_id == mailbox.pk
        # Back on the site, the visitor's chat is still theirs.
        visitor = context.new_page()
        visitor.goto(host_site.url + "/")
        frame = open_chat(visitor, channel)
        expect(frame.locator(".msg.mine", has_text="invoice for order 5150")).to_be_visible()
    finally:
        smtp.stop()


def test_the_satisfaction_survey_shows_as_score_buttons_and_a_click_answers_it(
    asgi_server, browser_contexts, host_site, live_worker
):
    from kpis.models import SurveyAnswer

    seed()
    channel = webchat_channel(host_site.url, survey={"csat": {"enabled": True}})
    host_site.pages["/"] = host_page(asgi_server, channel)
    visitor = browser_contexts().new_page()
    visitor.goto(host_site.url + "/")
    frame = open_chat(visitor, channel)
    send(frame, "How do I descale the kettle?")
    case = Message.objects.get(body="How do I descale the kettle?").case

    agent = agent_on_case(browser_contexts, asgi_server, case.pk)
    agent_replies(agent, "Vinegar and water, half and half, then rinse twice.")
    expect(frame.locator(".msg.ours", has_text="Vinegar and water")).to_be_visible(timeout=20000)
    agent.get_by_label("Status").select_option("resolved")

    survey = frame.locator(".msg.ours .survey")
    expect(survey).to_be_visible(timeout=20000)
    expect(survey.get_by_role("button")).to_have_count(5)
    survey.get_by_role("button", name="Score 5 of 5").click()
    expect(frame.locator(".msg.mine .bubble", has_text=re.compile(r"^5$"))).to_be_visible()
    expect(survey.get_by_role("button", name="Score 4 of 5")).to_be_disabled()
    eventually(visitor, lambda: SurveyAnswer.objects.filter(request__case=case).exists(), timeout_ms=15000)
    assert SurveyAnswer.objects.get(request__case=case).score == 5
    # Answered: after a reload the buttons cannot send a second score.
    visitor.reload()
    frame = open_chat(visitor, channel)
    expect(frame.locator(".msg.ours .survey").get_by_role("button", name="Score 1 of 5")).to_be_disabled()


def test_the_servers_refusal_is_shown_and_the_message_can_be_retried(
    asgi_server, browser_contexts, host_site
):
    seed()
    channel = webchat_channel(host_site.url)
    host_site.pages["/"] = host_page(asgi_server, channel)
    visitor = browser_contexts().new_page()
    visitor.goto(host_site.url + "/")
    frame = open_chat(visitor, channel)
    banner = frame.locator("#banner")
    # Past the per-visitor limit (fixed one-minute windows: at most two within this loop).
    for n in range(45):
        composer(frame).fill(f"flood {n}")
        composer(frame).press("Enter")
        bubble = frame.locator(
            ".msg.mine", has=frame.locator(".bubble", has_text=re.compile(rf"^flood {n}$"))
        )
        expect(bubble.and_(frame.locator("[data-id], .failed"))).to_have_count(1)
        if "failed" in (bubble.get_attribute("class") or ""):
            break
    else:
        pytest.fail("the server never refused a message")
    expect(banner).to_contain_text("You are sending too fast")
    expect(bubble).to_contain_text("Not sent. Tap to retry.")
    stored = Message.objects.filter(channel=channel).count()
    assert stored == n
    # Retried (by keyboard) once the window has passed: stored once, not twice.
    off_loop(_clear_rate_limits)
    bubble.focus()
    visitor.keyboard.press("Enter")
    retried = frame.locator(
        ".msg.mine[data-id]", has=frame.locator(".bubble", has_text=re.compile(rf"^flood {n}$"))
    )
    expect(retried).to_have_count(1)
    assert Message.objects.filter(channel=channel).count() == n + 1


def _clear_rate_limits():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("*webchat:rate:*"):
        client.delete(key)


def test_the_servers_sentences_reach_a_spanish_visitor_in_spanish(asgi_server, browser_contexts, host_site):
    seed()
    channel = webchat_channel(host_site.url)
    host_site.pages["/"] = host_page(asgi_server, channel)
    visitor = browser_contexts(locale="es-ES").new_page()
    visitor.goto(host_site.url + "/")
    frame = open_chat(visitor, channel)
    expect(frame.locator("#availability-text")).not_to_be_empty()
    assert frame.locator("#availability-text").inner_text() != "We usually reply in a few minutes."


def test_outside_business_hours_the_panel_says_we_are_away_and_still_takes_a_message(
    asgi_server, browser_contexts, host_site
):
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from kpis.models import BusinessHours
    from tests.factories import TeamFactory

    seed()
    team = TeamFactory(name="Weekend crew")
    # Open 09:00-17:00 every day, but today and tomorrow are holidays: closed now,
    # whatever the time the test runs, and back the day after tomorrow at 09:00.
    today = timezone.now().astimezone(ZoneInfo("Europe/Madrid")).date()
    BusinessHours.objects.create(
        name="Office",
        team=team,
        time_zone="Europe/Madrid",
        weekly={day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        holidays=[today.isoformat(), (today + timedelta(days=1)).isoformat()],
    )
    channel = webchat_channel(host_site.url, team=team.pk)
    host_site.pages["/"] = host_page(asgi_server, channel)
    visitor = browser_contexts().new_page()
    visitor.goto(host_site.url + "/")
    frame = open_chat(visitor, channel)
    expect(frame.locator("#availability")).to_have_class(re.compile(r"\baway\b"))
    expect(frame.locator("#availability-text")).to_have_text("We're away right now")
    notice = frame.locator("#offline-notice")
    expect(notice).to_contain_text("We're back")
    expect(notice).to_contain_text("09:00 (Europe/Madrid). Leave a message.")
    send(frame, "Call me back when you are in, please")
    assert Message.objects.filter(body="Call me back when you are in, please", channel=channel).exists()
