"""The bot's choices as each channel's native buttons, and the customer's tap coming back
through the real webhook (fixture helper) into a message the bot understands."""

import json
import time

import pytest

from conversations.delivery import message_deliver
from conversations.models import Author, Case, CaseStatus, Message, MessageKind
from knowledge.models import BotSession
from tests.channels_adapters.meta_support import facebook_channel, meta_headers, whatsapp_channel
from tests.factories import ChannelFactory
from tests.provider_server import Reply
from tests.webhooks import check_webhook

pytestmark = pytest.mark.django_db
BOT = {"bot": {"mode": "always", "name": "Lola"}}


def bot_on(channel):
    channel.settings = {**(channel.settings or {}), **BOT}
    channel.save()
    return channel


def bot_answer():
    return Message.objects.filter(author=Author.BOT, kind=MessageKind.TEXT).order_by("id").first()


@pytest.fixture
def meta_post(run_on_commit, client, take_bot_turns):
    """A signed Meta webhook through the real URL, processed; then the bot's queued turn taken."""

    def post(channel, payload):
        body = json.dumps(payload).encode()
        result = run_on_commit(check_webhook, client, channel, body, headers=meta_headers(body))
        take_bot_turns()
        return result

    return post


def wa_payload(message):
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "34612345678"}],
            "messages": [{"from": "34612345678", "timestamp": str(int(time.time())), **message}],
        }}]}],
    }  # fmt: skip


def test_whatsapp_gets_interactive_reply_buttons_and_a_tap_resolves(kb, graph, meta_post):
    channel = bot_on(whatsapp_channel())
    question = {"id": "wamid.q1", "type": "text", "text": {"body": "I forgot my password"}}
    meta_post(channel, wa_payload(question))
    answer = bot_answer()
    graph.script(Reply(200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.bot.1"}]}))
    assert message_deliver(message_id=answer.pk).outcome == "sent"
    sent = graph.requests[0].json()
    assert sent["type"] == "interactive" and sent["interactive"]["type"] == "button"
    assert kb["reset-your-password"].public_url in sent["interactive"]["body"]["text"]
    assert [b["reply"]["title"] for b in sent["interactive"]["action"]["buttons"]] == [
        "Yes",
        "Talk to a person",
    ]

    reply = {"type": "button_reply", "button_reply": {"id": "Yes", "title": "Yes"}}
    tap = {"id": "wamid.tap1", "type": "interactive", "context": {"id": "wamid.bot.1"}, "interactive": reply}
    meta_post(channel, wa_payload(tap))
    assert Case.objects.get(pk=answer.case_id).status == CaseStatus.RESOLVED
    assert BotSession.objects.get().state == BotSession.State.RESOLVED


def messenger_payload(message):
    return {
        "object": "page",
        "entry": [{"id": "112233445566778", "time": int(time.time() * 1000), "messaging": [{
            "sender": {"id": "6543210987654321"}, "recipient": {"id": "112233445566778"},
            "timestamp": int(time.time() * 1000), "message": message,
        }]}],
    }  # fmt: skip


def test_messenger_gets_quick_replies_and_the_person_button_hands_over(kb, graph, meta_post):
    channel = bot_on(facebook_channel())
    meta_post(channel, messenger_payload({"mid": "m_q1", "text": "Where is my package?"}))
    answer = bot_answer()
    graph.script(Reply(200, {"recipient_id": "6543210987654321", "message_id": "m_bot_1"}))
    assert message_deliver(message_id=answer.pk).outcome == "sent"
    sent = graph.requests[-1].json()["message"]
    assert [q["title"] for q in sent["quick_replies"]] == ["Yes", "Talk to a person"]

    tap = {"mid": "m_tap1", "text": "Talk to a person", "quick_reply": {"payload": "Talk to a person"}}
    meta_post(channel, messenger_payload(tap))
    session = BotSession.objects.get()
    assert session.state == BotSession.State.HANDED_OFF and session.handoff_reason == "asked"


def test_telegram_gets_a_reply_keyboard_and_the_tapped_text_resolves(
    client, kb, bot_api, run_on_commit, take_bot_turns
):
    channel = bot_on(
        ChannelFactory(
            kind="telegram", credentials={"bot_token": "7000001:AAH-token", "secret_token": "tg-secret"}
        )
    )

    def update(n, text):
        person = {"id": 52719304, "first_name": "Ana"}
        chat = {"id": 52719304, "type": "private"}
        message = {"message_id": n, "date": int(time.time()), "text": text, "from": person, "chat": chat}
        return {"update_id": n, "message": message}

    headers = {"X-Telegram-Bot-Api-Secret-Token": "tg-secret"}
    run_on_commit(check_webhook, client, channel, update(1, "¿Dónde está mi pedido?"), headers=headers)
    take_bot_turns()
    answer = bot_answer()
    bot_api.script(
        Reply(
            200,
            {"ok": True, "result": {"message_id": 9, "date": 1, "chat": {"id": 52719304, "type": "private"}}},
        )
    )
    assert message_deliver(message_id=answer.pk).outcome == "sent"
    keyboard = json.loads(bot_api.requests[0].form()["reply_markup"])["keyboard"]
    assert [b["text"] for b in keyboard[0]] == ["Sí", "Hablar con alguien"]
    run_on_commit(check_webhook, client, channel, update(2, "Sí"), headers=headers)
    take_bot_turns()
    assert BotSession.objects.get().state == BotSession.State.RESOLVED


def test_web_chat_serializes_the_choices_for_the_widget_buttons(kb, run_on_commit, take_bot_turns):
    from channels_adapters.base import Sender
    from channels_adapters.webchat.selectors import message_json
    from channels_adapters.webchat.tokens import Visitor
    from conversations.services import receive_inbound

    channel = bot_on(ChannelFactory(kind="webchat", credentials={"identity_secret": "s"}))
    visitor = Visitor(channel_key=channel.key, ref="visitor-1", verified=False, origin="")
    run_on_commit(
        receive_inbound, channel=channel, sender=Sender("webchat", visitor.address), external_id="w1",
        text="How do I cancel an order?",
    )  # fmt: skip
    take_bot_turns()
    data = message_json(bot_answer(), visitor=visitor)
    assert data["choices"] == ["Yes", "Talk to a person"] and data["author_name"] == "Lola"
