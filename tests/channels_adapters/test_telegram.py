"""Telegram: secret-token webhooks in, the real `telegram.Bot` out (against a local Bot API)."""

import json
from urllib.parse import unquote

import pytest
from django.core.files.storage import default_storage

from channels_adapters.models import InboundEvent
from channels_adapters.registry import adapter_for
from channels_adapters.telegram.services import telegram_attachments_fetch
from conversations import delivery, services
from conversations.attachments import attachment_save
from conversations.models import Direction, Message
from customers.models import Customer, Identity
from tests.conftest import wait_for
from tests.factories import ChannelFactory, CustomerFactory, IdentityFactory, UserFactory
from tests.provider_server import Reply
from tests.webhooks import check_webhook, fixture_bytes

TOKEN = "7000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "tg-secret_0123456789-abcdef"
USER_ID = 52719304
BOT = {"id": 7000001, "is_bot": True, "first_name": "Helpdesk", "username": "acme_help_bot"}
CHAT = {"id": USER_ID, "first_name": "Ana", "last_name": "Silva", "type": "private"}


def telegram_channel():
    return ChannelFactory(
        kind="telegram", name="Telegram bot", credentials={"bot_token": TOKEN, "secret_token": SECRET}
    )


@pytest.fixture
def channel(db):
    return telegram_channel()


def deliver(client, channel, name, *, secret=SECRET, **kwargs):
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return check_webhook(client, channel, fixture_bytes("telegram", name), headers=headers, **kwargs)


def ok(result) -> Reply:
    return Reply(200, {"ok": True, "result": result})


def sent_message(message_id: int, **fields) -> Reply:
    return ok({"message_id": message_id, "from": BOT, "chat": CHAT, "date": 1795685500, **fields})


# Inbound -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_text_lands_on_the_telegram_users_thread(client, channel):
    response, [event] = deliver(client, channel, "text.json")
    assert response.status_code == 200 and event.status == InboundEvent.Status.PROCESSED
    message = Message.objects.get()
    assert message.body == "Hi! Where is my refund for order #4411?"
    assert message.external_id == f"{USER_ID}:101"
    assert (message.identity.kind, message.identity.address) == ("telegram", str(USER_ID))
    assert message.thread.customer.name == "Ana Silva" and message.meta["username"] == "anasilva"
    assert message.provider_timestamp.timestamp() == 1795685400


@pytest.mark.django_db
def test_redelivered_update_is_one_message(client, channel):
    deliver(client, channel, "text.json")
    _, [again] = deliver(client, channel, "text.json")
    assert Message.objects.count() == 1 and again.summary["duplicates"] == 1


@pytest.mark.django_db
def test_the_secret_token_is_never_stored_nor_shown_in_admin(client, channel, admin_client):
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Authorization": "Bearer x", "Cookie": "s=1"}
    _, [event] = check_webhook(client, channel, fixture_bytes("telegram", "text.json"), headers=headers)
    assert SECRET not in json.dumps(event.headers)
    assert event.headers["X-Telegram-Bot-Api-Secret-Token"] == "[masked]"
    assert not {"Authorization", "Cookie"} & set(event.headers)
    page = admin_client.get(f"/admin/channels_adapters/inboundevent/{event.pk}/change/")
    assert page.status_code == 200 and SECRET not in page.content.decode()


def test_events_stored_before_masking_are_masked_by_the_migration(channel):
    import importlib

    from django.apps import apps

    event = InboundEvent.objects.create(
        channel=channel, body=b"{}", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Host": "h"}
    )
    importlib.import_module("channels_adapters.migrations.0003_mask_stored_secret_headers").mask(apps, None)
    event.refresh_from_db()
    assert event.headers == {"X-Telegram-Bot-Api-Secret-Token": "[masked]", "Host": "h"}


def test_wrong_or_missing_secret_token_is_refused_and_nothing_is_stored(client, channel):
    deliver(client, channel, "text.json", secret="not-the-secret", expect_status=403)
    deliver(client, channel, "text.json", secret=None, expect_status=403)
    deliver(client, channel, "text.json", secret=SECRET + "x", expect_status=403)
    assert InboundEvent.objects.count() == 0 and Message.objects.count() == 0


@pytest.mark.django_db
def test_photo_keeps_the_largest_size_and_caption(client, channel):
    deliver(client, channel, "photo.json")
    message = Message.objects.get()
    assert message.body == "The box arrived like this"
    [photo] = message.attachments
    assert photo["telegram_file_id"] == "AgACAgQAAxkBAAIBZmVlarge" and photo["content_type"] == "image/jpeg"


@pytest.mark.django_db
def test_document_and_voice_are_attachments(client, channel):
    deliver(client, channel, "document.json")
    deliver(client, channel, "voice.json")
    document, voice = Message.objects.order_by("pk")
    assert document.kind == "media" and document.attachments[0]["name"] == "invoice-4411.pdf"
    assert document.attachments[0]["content_type"] == "application/pdf"
    assert voice.attachments[0]["content_type"] == "audio/ogg" and voice.kind == "media"


@pytest.mark.django_db
def test_location_is_kept(client, channel):
    deliver(client, channel, "location.json")
    message = Message.objects.get()
    assert message.meta["location"] == {"latitude": 40.416775, "longitude": -3.70379}
    assert message.body == "Location: 40.416775, -3.70379"


@pytest.mark.django_db
def test_sharing_ones_own_contact_joins_the_phone_customer(client, channel):
    # Ana wrote by SMS before; then on Telegram, then shares her own number.
    sms_customer = CustomerFactory(name="Ana Silva")
    IdentityFactory(customer=sms_customer, kind="phone", address="+14155550199")
    deliver(client, channel, "text.json")
    assert Customer.objects.count() == 2
    deliver(client, channel, "contact_own.json")

    assert Customer.objects.count() == 1
    telegram = Identity.objects.get(kind="telegram")
    assert telegram.customer == sms_customer
    assert Message.objects.filter(thread=sms_customer.thread).count() == 3  # both messages + merge note
    contact = Message.objects.get(external_id=f"{USER_ID}:106")
    assert contact.meta["contact"]["linked"] is True and contact.thread == sms_customer.thread


@pytest.mark.django_db
def test_own_contact_with_an_unknown_number_adds_the_phone(client, channel):
    deliver(client, channel, "contact_own.json")
    customer = Customer.objects.get()
    assert set(customer.identities.values_list("kind", "address")) == {
        ("telegram", str(USER_ID)),
        ("phone", "+14155550199"),
    }


@pytest.mark.django_db
def test_someone_elses_contact_links_nobody(client, channel):
    deliver(client, channel, "contact_other.json")
    message = Message.objects.get()
    assert message.body == "Shared contact: Bruno +14155550142"
    assert "linked" not in message.meta["contact"]
    assert not Identity.objects.filter(kind="phone").exists()


@pytest.mark.django_db
def test_edited_message_replaces_text_and_keeps_the_old(client, channel):
    deliver(client, channel, "text.json")
    deliver(client, channel, "edited.json")
    message = Message.objects.get()
    assert message.body == "Hi! Where is my refund for order #4412? (typo, sorry)"
    assert message.meta["edits"][0]["text"] == "Hi! Where is my refund for order #4411?"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "ignored"), [("group.json", "group-message"), ("callback_query.json", "callback_query")]
)
def test_groups_and_other_updates_are_ignored_on_purpose(client, channel, name, ignored):
    _, [event] = deliver(client, channel, name)
    assert event.status == InboundEvent.Status.PROCESSED and event.summary["ignored"] == [ignored]
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_signed_truncated_update_is_kept_failed(client, channel):
    _, [event] = deliver(client, channel, "truncated.json")
    assert event.status == InboundEvent.Status.FAILED and "not JSON" in event.error
    assert event.body_bytes == fixture_bytes("telegram", "truncated.json")


# Files: getFile through the real client -----------------------------------------------------


@pytest.mark.django_db
def test_photo_is_fetched_with_get_file_and_stored(client, channel, bot_api):
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg-bytes"
    bot_api.script(
        ok(
            {
                "file_id": "AgACAgQAAxkBAAIBZmVlarge",
                "file_unique_id": "AQADlarge",
                "file_size": 16,
                "file_path": "photos/file_7.jpg",
            }
        ),
        path=f"/bot{TOKEN}/getFile",
    )
    bot_api.script(Reply(200, jpeg, {"Content-Type": "image/jpeg"}), path="/file/bot")
    deliver(client, channel, "photo.json")
    message = Message.objects.get()

    assert telegram_attachments_fetch(message_id=message.pk) == 1
    message.refresh_from_db()
    [photo] = message.attachments
    assert photo["size"] == len(jpeg) and photo["telegram_file_id"] == "AgACAgQAAxkBAAIBZmVlarge"
    with default_storage.open(photo["path"]) as stored:
        assert stored.read() == jpeg
    get_file, download = bot_api.requests
    assert get_file.form()["file_id"] == "AgACAgQAAxkBAAIBZmVlarge"
    assert download.method == "GET" and unquote(download.path) == f"/file/bot{TOKEN}/photos/file_7.jpg"
    # Already stored: a second run fetches nothing.
    assert telegram_attachments_fetch(message_id=message.pk) == 0 and len(bot_api.requests) == 2


@pytest.mark.django_db
def test_file_telegram_refuses_is_marked_not_retried(client, channel, bot_api):
    bot_api.script(
        Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: file is too big"})
    )
    deliver(client, channel, "document.json")
    message = Message.objects.get()
    assert telegram_attachments_fetch(message_id=message.pk) == 0
    message.refresh_from_db()
    assert (
        "file is too big" in message.attachments[0]["error"].lower() and "path" not in message.attachments[0]
    )


def test_photo_webhook_to_stored_file_through_the_worker(live_worker, client, bot_api):
    channel = telegram_channel()
    bot_api.script(
        ok(
            {
                "file_id": "AgACAgQAAxkBAAIBZmVlarge",
                "file_unique_id": "AQADlarge",
                "file_path": "photos/file_8.jpg",
            }
        ),
        path=f"/bot{TOKEN}/getFile",
    )
    bot_api.script(Reply(200, b"jpeg", {"Content-Type": "image/jpeg"}), path="/file/bot")
    deliver(client, channel, "photo.json", process=False)
    stored = wait_for(lambda: Message.objects.filter(attachments__0__path__isnull=False).first())
    assert stored.attachments[0]["size"] == 4


# Outbound -----------------------------------------------------------------------------------


def _case(client, channel):
    deliver(client, channel, "text.json")
    return Message.objects.get(external_id=f"{USER_ID}:101").case


@pytest.mark.django_db
def test_reply_is_sent_with_send_message(client, channel, bot_api):
    bot_api.script(sent_message(201, text="It left our bank today."))
    reply = services.send_reply(
        case=_case(client, channel), author_user=UserFactory(), body="It left our bank today."
    )
    assert delivery.message_deliver(message_id=reply.pk).outcome == "sent"
    reply.refresh_from_db()
    # No receipts on Telegram: "sent" is the last status a message gets.
    assert reply.status == "sent" and reply.external_id == f"{USER_ID}:201"
    [request] = bot_api.requests
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert request.form() == {"chat_id": str(USER_ID), "text": "It left our bank today."}


@pytest.mark.django_db
def test_long_reply_is_split_at_telegrams_limit(client, channel, bot_api):
    bot_api.script(sent_message(301, text="..."), sent_message(302, text="..."))
    reply = services.send_reply(case=_case(client, channel), author_user=UserFactory(), body="x" * 5000)
    delivery.message_deliver(message_id=reply.pk)
    assert [len(r.form()["text"]) for r in bot_api.requests] == [4096, 904]
    assert Message.objects.get(pk=reply.pk).external_id == f"{USER_ID}:301"


@pytest.mark.django_db
def test_attachment_is_sent_as_photo_with_caption(client, channel, bot_api):
    bot_api.script(sent_message(202, caption="The label"))
    stored = attachment_save(content=b"\x89PNG-label", name="label.png", content_type="image/png")
    reply = services.send_reply(
        case=_case(client, channel), author_user=UserFactory(), body="The label", attachments=[stored]
    )
    assert delivery.message_deliver(message_id=reply.pk).outcome == "sent"
    [request] = bot_api.requests
    assert request.path == f"/bot{TOKEN}/sendPhoto"
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b"\x89PNG-label" in request.body and b"The label" in request.body


@pytest.mark.django_db
def test_blocked_bot_reaches_the_agent_in_plain_words(client, channel, bot_api):
    bot_api.script(
        Reply(403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})
    )
    reply = services.send_reply(case=_case(client, channel), author_user=UserFactory(), body="Hello?")
    assert delivery.message_deliver(message_id=reply.pk).outcome == "failed"
    reply.refresh_from_db()
    assert reply.status == "failed"
    assert "blocked the bot" in reply.error and "bot was blocked by the user" in reply.error


@pytest.mark.django_db
def test_flood_control_is_retried_after_telegrams_wait(client, channel, bot_api):
    bot_api.script(
        Reply(
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            },
        )
    )
    reply = services.send_reply(case=_case(client, channel), author_user=UserFactory(), body="Hello?")
    outcome = delivery.message_deliver(message_id=reply.pk)
    assert outcome.outcome == "retry" and outcome.retry_in >= 7


@pytest.mark.django_db
def test_register_webhook_calls_set_webhook_with_the_secret(channel, bot_api, settings):
    settings.PUBLIC_BASE_URL = "https://help.example.com"
    bot_api.script(ok(True))
    note = adapter_for("telegram").register_webhook(channel)
    [request] = bot_api.requests
    assert request.path == f"/bot{TOKEN}/setWebhook"
    sent = request.form()
    assert sent["url"] == f"https://help.example.com{channel.webhook_path}"
    assert sent["secret_token"] == SECRET
    assert sent["allowed_updates"] == '["message", "edited_message"]'
    assert "help.example.com" in note


@pytest.mark.django_db
def test_register_webhook_refuses_a_secret_telegram_would_reject(bot_api):
    from channels_adapters.base import SendError

    channel = ChannelFactory(kind="telegram", credentials={"bot_token": TOKEN, "secret_token": "has spaces!"})
    with pytest.raises(SendError, match="secret_token"):
        adapter_for("telegram").register_webhook(channel)
    assert bot_api.requests == []


@pytest.mark.django_db
def test_outbound_direction_is_recorded(client, channel, bot_api):
    bot_api.script(sent_message(203, text="ok"))
    reply = services.send_reply(case=_case(client, channel), author_user=UserFactory(), body="ok")
    delivery.message_deliver(message_id=reply.pk)
    assert Message.objects.get(pk=reply.pk).direction == Direction.OUT


@pytest.mark.django_db
def test_survey_scores_are_sent_as_reply_keyboard_buttons(client, channel, bot_api):
    bot_api.script(sent_message(203, text="How did we do?"))
    reply = services.send_reply(
        case=_case(client, channel),
        author_user=UserFactory(),
        body="How did we do? Reply 1-5",
        meta={"quick_replies": [1, 2, 3, 4, 5]},
    )
    assert delivery.message_deliver(message_id=reply.pk).outcome == "sent"
    markup = json.loads(bot_api.requests[0].form()["reply_markup"])
    assert [b["text"] for b in markup["keyboard"][0]] == ["1", "2", "3", "4", "5"]
    assert markup["one_time_keyboard"] is True
