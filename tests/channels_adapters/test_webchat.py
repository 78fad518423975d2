"""The website chat's visitor side: sessions, messages, linking, limits, and who reads what.

Through the real views on PostgreSQL and the Redis-backed cache; the socket tests
(test_webchat_socket.py) go through the ASGI app over channels_redis.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from channels_adapters.webchat.tokens import token_issue, token_read
from conversations import services
from conversations.delivery import message_deliver
from conversations.models import Case, Message
from customers.models import Customer, Identity
from tests.channels_adapters.webchat_support import SITE, Frame, verified_user, webchat_channel
from tests.factories import ChannelFactory, CustomerFactory, IdentityFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db

FUZZ = hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # rate-limit counters and presence of one test must not reach the next
    yield
    cache.clear()


@pytest.fixture
def chat():
    return webchat_channel()


def test_a_visitor_starts_a_session_and_writes_onto_a_new_customer_thread(client, chat):
    frame = Frame(client, chat)
    started = frame.start()
    assert started.status_code == 200, started.content
    body = started.json()
    assert body["messages"] == [] and body["case"] is None and body["visitor"]["verified"] is False
    assert not Identity.objects.filter(kind="webchat").exists(), "a visitor who never writes costs no rows"

    sent = frame.send(
        "Hola, ¿dónde está mi pedido?", page={"url": SITE + "/shoes", "title": "Shoes"}, tz="Europe/Madrid"
    )
    assert sent.status_code == 201, sent.content
    message = Message.objects.get()
    assert message.channel == chat and message.direction == "in" and message.identity.kind == "webchat"
    assert message.identity.address.startswith(chat.key + ":v:")
    assert message.meta["webchat"]["page"] == {"url": SITE + "/shoes", "title": "Shoes"}
    assert message.meta["webchat"]["time_zone"] == "Europe/Madrid"
    case = Case.objects.get()
    assert case.origin_channel == chat and case.thread.customer == message.identity.customer

    history = frame.messages().json()
    assert [m["text"] for m in history["messages"]] == ["Hola, ¿dónde está mi pedido?"]
    assert history["case"] == {"id": case.pk, "number": case.pk, "status": "open"}


def test_the_same_client_id_again_is_the_same_message(client, chat):
    frame = Frame(client, chat)
    frame.start()
    first = frame.send("once", client_id="c-1").json()["message"]
    again = frame.send("once", client_id="c-1")
    assert again.status_code == 201 and again.json()["message"]["id"] == first["id"]
    assert Message.objects.count() == 1


def test_a_site_not_on_the_list_is_refused_and_nothing_is_stored(client, chat):
    frame = Frame(client, chat, origin="https://evil.example")
    response = frame.start()
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    # A token of an allowed session used from a page of another site is refused too.
    good = Frame(client, chat)
    good.start()
    refused = client.post(
        good.url("messages"),
        json.dumps({"client_id": "x1", "text": "hi"}),
        content_type="application/json",
        headers={**good.headers(), "Origin": "https://evil.example"},
    )
    assert refused.status_code == 403
    assert not Message.objects.exists() and not Customer.objects.exists()


def test_a_tampered_or_foreign_token_is_refused_with_nothing_stored(client, chat):
    frame = Frame(client, chat)
    frame.start()
    frame.token = frame.token[:-3] + ("AAA" if not frame.token.endswith("AAA") else "BBB")
    assert frame.send("hi").status_code == 401
    assert frame.messages().status_code == 401
    # A genuine token of another channel does not open this one.
    other = webchat_channel()
    visitor = token_read(Frame(client, other).start().json()["token"], channel_key=other.key)
    frame.token = token_issue(visitor)
    assert frame.send("hi").status_code == 401
    assert frame.start().status_code == 401
    assert not Message.objects.exists()


def test_a_visitor_never_reads_another_visitors_messages(client, chat, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    ana, bo = Frame(client, chat), Frame(client, chat)
    ana.start(), bo.start()
    ana.upload("receipt.png", PNG, "image/png", text="my receipt")
    bo.send("bo here")
    assert [m["text"] for m in ana.messages().json()["messages"]] == ["my receipt"]
    assert [m["text"] for m in bo.messages().json()["messages"]] == ["bo here"]
    # Ana's signed file link works for the file it names and nothing else.
    link = ana.messages().json()["messages"][0]["attachments"][0]
    assert link["image"] is True
    assert client.get(link["url"]).status_code == 200
    bos_message = Message.objects.get(body="bo here")
    forged = link["url"].replace(f"/{Message.objects.get(body='my receipt').pk}/", f"/{bos_message.pk}/")
    assert client.get(forged).status_code == 404


def test_prechat_email_links_to_the_existing_customer_without_showing_their_history(client):
    chat = webchat_channel(prechat={"name": "optional", "email": "required"})
    manuel = CustomerFactory(name="Manuel García")
    IdentityFactory(customer=manuel, kind="email", address="manuel@example.com")
    MessageFactory(thread=manuel.thread, direction="in", body="My old complaint about order 41")
    frame = Frame(client, chat)
    frame.start()
    # Required pre-chat first: a message before it is refused.
    assert frame.send("hello").json()["error"]["code"] == "prechat_required"
    bad = frame.post("prechat", {"email": "not-an-email"})
    assert bad.status_code == 400 and "email" in bad.json()["error"]["fields"]
    done = frame.post("prechat", {"name": "Manuel", "email": "Manuel@Example.com"})
    assert done.status_code == 200, done.content
    frame.send("I am back about order 41")

    visitor = Identity.objects.get(kind="webchat")
    assert visitor.customer == manuel, "the agent sees one customer"
    assert Message.objects.get(body="I am back about order 41").thread == manuel.thread
    seen = [m["text"] for m in frame.messages().json()["messages"]]
    assert seen == ["I am back about order 41"], "the visitor sees only their own chat"
    assert "My old complaint" not in json.dumps(frame.start().json())


def test_a_verified_visitor_sees_their_history_on_another_device_and_a_forged_hash_is_refused(client, chat):
    laptop = Frame(client, chat)
    assert laptop.start(**verified_user("42", email="ana@example.com", name="Ana")).status_code == 200
    laptop.send("written on the laptop")
    phone = Frame(client, chat)
    started = phone.start(**verified_user("42"))
    assert started.json()["visitor"]["verified"] is True
    assert [m["text"] for m in started.json()["messages"]] == ["written on the laptop"]
    assert Identity.objects.get(kind="email").customer == Identity.objects.get(kind="webchat").customer

    forged = Frame(client, chat).start(user={"identifier": "42"}, hash="0" * 64)
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "identity_unverified"
    other_user = Frame(client, chat).start(user={"identifier": "43"}, hash=verified_user("42")["hash"])
    assert other_user.status_code == 403


def test_an_anonymous_chat_joins_the_visitor_record_when_they_sign_in(client, chat):
    frame = Frame(client, chat)
    frame.start()
    frame.send("before signing in")
    signed_in = frame.start(**verified_user("77"))
    assert signed_in.status_code == 200
    webchat = Identity.objects.filter(kind="webchat")
    assert webchat.count() == 2 and len({i.customer_id for i in webchat}) == 1


def test_with_verification_required_anonymous_visitors_cannot_chat(client):
    chat = webchat_channel(require_verification=True)
    frame = Frame(client, chat)
    refused = frame.start()
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "verification_required"
    assert Frame(client, chat).start(**verified_user("9")).status_code == 200


def test_limits_too_long_too_fast_too_big_wrong_type(client, chat, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.HELPDESK = {
        **settings.HELPDESK,
        "WEBCHAT_MAX_MESSAGE_CHARS": 20,
        "WEBCHAT_MAX_ATTACHMENT_BYTES": 1000,
        "WEBCHAT_RATE_LIMITS": {
            **settings.HELPDESK["WEBCHAT_RATE_LIMITS"],
            "message": {"window": 60, "per_visitor": 3, "per_ip": 100},
        },
    }
    frame = Frame(client, chat)
    frame.start()
    long = frame.send("x" * 21)
    assert long.status_code == 400 and long.json()["error"]["code"] == "too_long"
    assert frame.upload("big.png", PNG + b"\x00" * 2000, "image/png").status_code == 413
    assert frame.upload("page.html", b"<script>", "text/html").status_code == 415
    assert frame.upload("fake.png", b"<html>not a png</html>", "image/png").status_code == 415
    # Refused uploads count towards the limit too (they cost us the upload): a fresh visitor here.
    frame = Frame(client, chat)
    frame.start()
    for n in range(3):
        assert frame.send(f"m{n}").status_code == 201
    limited = frame.send("one too many")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert "wait" in limited.json()["error"]["message"]
    assert Message.objects.count() == 3, "nothing past the limit is stored"


def test_the_webhook_url_of_a_web_chat_channel_refuses_everything(client, chat):
    response = client.post(chat.webhook_path, "{}", content_type="application/json")
    assert response.status_code == 403
    from channels_adapters.models import InboundEvent

    assert not InboundEvent.objects.exists()


def test_an_agent_reply_is_sent_to_the_visitor_and_read_when_they_say_so(client, chat):
    frame = Frame(client, chat)
    frame.start()
    frame.send("is anyone there?")
    case = Case.objects.get()
    agent = UserFactory(first_name="Lucía")
    reply = services.send_reply(case=case, author_user=agent, body="Yes! Lucía here.")
    assert reply.channel == chat and reply.identity.kind == "webchat"
    assert message_deliver(message_id=reply.pk).outcome == "sent"
    mine = frame.messages(after=Message.objects.get(body="is anyone there?").pk).json()["messages"]
    assert [(m["text"], m["author_name"], m["direction"]) for m in mine] == [
        ("Yes! Lucía here.", "Lucía", "out")
    ]
    assert frame.post("read", {"up_to": reply.pk}).status_code == 204
    reply.refresh_from_db()
    assert reply.status == "read" and reply.read_at is not None


def test_notes_and_other_channels_never_reach_the_visitor(client, chat):
    frame = Frame(client, chat)
    frame.start()
    frame.send("hi")
    case = Case.objects.get()
    from conversations.cases import case_note_add

    case_note_add(case=case, author_user=UserFactory(), body="internal: VIP, be nice")
    email_channel = ChannelFactory(kind="email", credentials={})
    IdentityFactory(customer=case.thread.customer, kind="email", address="v@example.com")
    MessageFactory(thread=case.thread, case=case, channel=email_channel, direction="out", body="by email")
    texts = [m["text"] for m in frame.messages().json()["messages"]]
    assert texts == ["hi"]


def test_seen_up_to_follows_the_agents_read(client, chat):
    frame = Frame(client, chat)
    frame.start()
    frame.send("first")
    case = Case.objects.get()
    assert frame.messages().json()["seen_up_to"] is None
    from conversations.cases import case_mark_read

    case_mark_read(case=case, user=UserFactory())
    assert frame.messages().json()["seen_up_to"] == Message.objects.get(body="first").pk


def test_an_offline_visitor_with_an_email_is_answered_by_email(client, chat):
    frame = Frame(client, chat)
    frame.start()
    frame.send("please email me")
    frame.post("prechat", {"email": "gone@example.com"})  # prechat off: the email is ignored
    case = Case.objects.get()
    visitor = Identity.objects.get(kind="webchat")
    IdentityFactory(customer=visitor.customer, kind="email", address="gone@example.com")
    email = ChannelFactory(kind="email", name="Support email", credentials={})
    # Present: the chat is the default.
    assert services.send_reply(case=case, author_user=UserFactory(), body="still there?").channel == chat
    cache.clear()  # the visitor's presence runs out
    away = services.send_reply(case=case, author_user=UserFactory(), body="sent to your email")
    assert away.channel == email and away.identity.address == "gone@example.com"
    # An agent who picks the chat explicitly still gets the chat.
    assert services.send_reply(case=case, author_user=UserFactory(), body="x", channel=chat).channel == chat


def test_availability_inside_and_outside_business_hours(client, chat):
    from kpis.models import BusinessHours

    BusinessHours.objects.create(
        name="Office", time_zone="Europe/Madrid", weekly={"mon": [["09:00", "18:00"]]}, holidays=[]
    )
    from channels_adapters.webchat.config import widget_config
    from channels_adapters.webchat.selectors import availability

    config = widget_config(chat)
    monday_noon = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert availability(config=config, now=monday_noon)["open"] is True
    tuesday = monday_noon + timedelta(days=1)
    away = availability(config=config, now=tuesday)
    assert away["open"] is False and away["next_open"].startswith("2026-12-07T09:00")
    assert "Monday 09:00" in away["text"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(
    text=st.text(max_size=300),
    client_id=st.text(max_size=80),
    extra=st.dictionaries(st.sampled_from(["page", "tz", "title", "text", "client_id"]), _JSON, max_size=3),
    raw=st.binary(max_size=200),
)
def test_whatever_a_visitor_sends_is_stored_clean_or_refused_clearly(
    client, chat, text, client_id, extra, raw
):
    cache.clear()
    frame = Frame(client, chat)
    frame.start()
    before = Message.objects.count()
    body = {"client_id": client_id, "text": text, **extra}
    for response in (
        client.post(
            frame.url("messages"), json.dumps(body), content_type="application/json", headers=frame.headers()
        ),
        client.post(frame.url("messages"), raw, content_type="application/json", headers=frame.headers()),
        client.post(frame.url("session"), raw, content_type="application/json"),
    ):
        assert response.status_code < 500, response.content[:300]
        if response.status_code >= 400:
            assert response.json()["error"]["message"], "a refusal says why"
    for message in Message.objects.all()[before:]:
        assert "\x00" not in message.body and len(message.body) <= 5000


def test_a_visitor_who_left_is_answered_by_email_and_their_email_answer_lands_on_the_same_case(
    client, settings, tmp_path
):
    from tests.channels_adapters.email_support import SmtpServer, build_mail, email_channel, raw_headers
    from tests.webhooks import check_webhook

    settings.MEDIA_ROOT = str(tmp_path)
    smtp = SmtpServer().start()
    try:
        chat = webchat_channel(prechat={"email": "optional"})
        mailbox = email_channel(smtp_port=smtp.port)
        frame = Frame(client, chat)
        frame.start()
        frame.post("prechat", {"email": "visitor@example.org"})
        frame.send("Can you email me the invoice?")
        case = Case.objects.get()
        cache.clear()  # the visitor closed the tab a while ago

        reply = services.send_reply(case=case, author_user=UserFactory(), body="Here is your invoice.")
        assert reply.channel == mailbox
        assert message_deliver(message_id=reply.pk).outcome == "sent"
        reply.refresh_from_db()
        [mail] = smtp.received
        assert mail.rcpt_tos == ["visitor@example.org"] and "Here is your invoice." in mail.raw.decode()

        answer = build_mail(
            sender="Visitor <visitor@example.org>",
            subject="Re: " + str(mail.message["Subject"]),
            message_id="<visitor-answer-1@example.org>",
            body="Thanks, got it.",
            headers={"In-Reply-To": reply.external_id, "References": reply.external_id},
        )
        check_webhook(
            client, mailbox, answer, headers=raw_headers(mailbox, answer), content_type="message/rfc822"
        )
        back = Message.objects.get(external_id="<visitor-answer-1@example.org>")
        assert back.case_id == case.pk and back.thread_id == case.thread_id
    finally:
        smtp.stop()


def test_the_servers_sentences_follow_the_visitors_language(client, chat):
    frame = Frame(client, chat)
    started = frame.start(lang="es")
    assert started.json()["availability"]["text"] == "Solemos responder en pocos minutos."
    # The session's language stays with its token: later refusals are in Spanish too.
    refused = frame.send("x" * 6000)
    assert refused.status_code == 400 and "demasiado largo" in refused.json()["error"]["message"]
    english = Frame(client, chat)
    assert english.start(lang="en").json()["availability"]["text"] == "We usually reply in a few minutes."
    assert "too long" in english.send("x" * 6000).json()["error"]["message"]
