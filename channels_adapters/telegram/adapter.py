"""Telegram bots: a customer's private chat with the company's bot lands on their thread.

Inbound: Telegram POSTs one JSON Update per request to the webhook registered
with `register_webhook` (admin action -> ``setWebhook`` with our
``secret_token``). That header, compared in constant time, is Telegram's only
authentication. The identity is the Telegram user id (``telegram`` kind); a
message's external id is ``<chat id>:<message_id>`` (message ids are only
unique within a chat), so a redelivered update (same update_id) is one message.

- text, photo (largest size), document, voice, audio, video: files are fetched
  after the message is stored (``getFile`` by a Celery task) and kept in our storage;
- location and contact: kept in meta and summarised in the text. A user sharing
  their *own* contact (contact.user_id == from.id) links their Telegram identity
  to the customer of that phone number;
- edited_message: the new text replaces the old, which stays in meta["edits"].
Ignored on purpose: group/channel chats, channel posts, callback and inline
queries, chat member changes, polls, service messages.

Outbound: ``sendMessage`` (split at Telegram's 4,096 characters),
``sendPhoto``/``sendDocument`` for attachments. Telegram has no delivery or
read receipts: a successful send is the only status a message gets.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from datetime import UTC, datetime

from django.core.files.storage import default_storage
from django.dispatch import receiver
from telegram import InputFile, KeyboardButton, ReplyKeyboardMarkup
from telegram.error import TelegramError

from channels_adapters.base import (
    ChannelAdapter,
    Ignored,
    InboundMessage,
    MessageUpdate,
    ParseError,
    PermanentSendError,
    Sender,
    SendError,
    SendResult,
    SignatureError,
)
from channels_adapters.telegram import client
from channels_adapters.telegram.services import telegram_contact_link
from channels_adapters.telegram.tasks import telegram_attachments_fetch_task
from conversations.signals import message_created
from customers.models import IdentityKind

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # the only authentication Telegram sends
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
ALLOWED_UPDATES = ["message", "edited_message"]

# Update types we receive (or could) and leave alone.
IGNORED_UPDATES = (
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "inline_query",
    "chosen_inline_result",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "poll",
    "poll_answer",
    "message_reaction",
    "business_message",
)

# Files a customer can send: (field, default content type, default name).
_FILES = (
    ("document", "application/octet-stream", "document"),
    ("voice", "audio/ogg", "voice.ogg"),
    ("audio", "audio/mpeg", "audio.mp3"),
    ("video", "video/mp4", "video.mp4"),
    ("video_note", "video/mp4", "video-note.mp4"),
)


def _timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _name(person: dict) -> str:
    return " ".join(p for p in (person.get("first_name"), person.get("last_name")) if p).strip()


class TelegramAdapter(ChannelAdapter):
    kind = "telegram"
    identity_kinds = (IdentityKind.TELEGRAM,)
    credential_keys = ("bot_token", "secret_token")
    ignored_events = (*IGNORED_UPDATES, "group-message", "service-message")
    secret_headers = (SECRET_HEADER,)

    def verify(self, channel, request):
        expected = channel.credentials.get("secret_token") or ""
        given = request.headers.get(SECRET_HEADER) or ""
        if not expected:
            raise SignatureError("the channel has no secret_token")
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise SignatureError("X-Telegram-Bot-Api-Secret-Token does not match")

    def register_webhook(self, channel):
        secret = channel.credentials.get("secret_token") or ""
        if not SECRET_PATTERN.match(secret):
            raise SendError(
                "The channel's secret_token must be 1-256 letters, digits, '_' or '-' (Telegram's rule)."
            )
        url = channel.webhook_url

        async def set_webhook(bot):
            return await bot.set_webhook(url=url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)

        try:
            client.run(channel, set_webhook)
        except TelegramError as exc:
            raise client.send_error(exc) from exc
        return f"Telegram will send this bot's messages to {url}."

    # Inbound ---------------------------------------------------------------

    def parse(self, channel, event):
        try:
            update = json.loads(event.body_bytes)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParseError(f"The body is not JSON: {exc}") from exc
        if not isinstance(update, dict) or "update_id" not in update:
            raise ParseError("A Telegram update is a JSON object with an update_id")
        if isinstance(update.get("message"), dict):
            return [self._message(update["message"])]
        if isinstance(update.get("edited_message"), dict):
            return [self._edit(update["edited_message"])]
        kinds = [k for k in update if k != "update_id"]
        return [Ignored(event=kinds[0] if kinds else "empty-update")]

    def _ids(self, message: dict) -> tuple[str, dict, dict]:
        chat = message.get("chat") or {}
        person = message.get("from") or {}
        if "message_id" not in message or "id" not in chat:
            raise ParseError("A Telegram message needs message_id and chat.id")
        return f"{chat['id']}:{message['message_id']}", chat, person

    def _message(self, message: dict):
        external_id, chat, person = self._ids(message)
        if chat.get("type") != "private":
            return Ignored(event="group-message")
        if "id" not in person:
            raise ParseError("A private message needs from.id")
        sender = Sender(IdentityKind.TELEGRAM, str(person["id"]), _name(person))
        text = message.get("text") or message.get("caption") or ""
        attachments, meta = [], {}
        if person.get("username"):
            meta["username"] = person["username"]
        if message.get("photo"):
            largest = max(
                message["photo"],
                key=lambda p: (p.get("file_size") or 0, (p.get("width") or 0) * (p.get("height") or 0)),
            )
            attachments.append(
                {
                    "telegram_file_id": largest["file_id"],
                    "content_type": "image/jpeg",
                    "name": "photo.jpg",
                    "size": largest.get("file_size"),
                    "url": "",
                }
            )
        for field, content_type, default_name in _FILES:
            item = message.get(field)
            if isinstance(item, dict) and item.get("file_id"):
                attachments.append(
                    {
                        "telegram_file_id": item["file_id"],
                        "content_type": item.get("mime_type") or content_type,
                        "name": item.get("file_name") or default_name,
                        "size": item.get("file_size"),
                        "url": "",
                    }
                )
        if isinstance(message.get("location"), dict):
            where = message["location"]
            meta["location"] = {"latitude": where.get("latitude"), "longitude": where.get("longitude")}
            text = text or f"Location: {where.get('latitude')}, {where.get('longitude')}"
        if isinstance(message.get("contact"), dict):
            contact = message["contact"]
            meta["contact"] = {
                k: contact.get(k) for k in ("phone_number", "first_name", "last_name", "user_id")
            }
            text = text or f"Shared contact: {_name(contact)} {contact.get('phone_number', '')}".strip()
            if contact.get("phone_number") and contact.get("user_id") == person["id"]:
                # Linked before the message is stored, so it lands on the merged thread.
                telegram_contact_link(
                    telegram_id=sender.address, phone=contact["phone_number"], name=sender.name
                )
                meta["contact"]["linked"] = True
        if message.get("sticker"):
            text = text or f"[sticker {message['sticker'].get('emoji', '')}]".replace(" ]", "]")
        if not text and not attachments:
            return Ignored(event="service-message")
        return InboundMessage(
            external_id=external_id,
            sender=sender,
            text=text,
            kind="text" if text or not attachments else "media",
            attachments=attachments,
            timestamp=_timestamp(message.get("date")),
            meta=meta,
        )

    def _edit(self, message: dict):
        external_id, chat, _ = self._ids(message)
        if chat.get("type") != "private":
            return Ignored(event="group-message")
        text = message.get("text") if "text" in message else message.get("caption")
        return MessageUpdate(
            external_id=external_id,
            text=text,
            timestamp=_timestamp(message.get("edit_date") or message.get("date")),
        )

    # Outbound --------------------------------------------------------------

    def _source(self, attachment: dict):
        if attachment.get("path") and default_storage.exists(attachment["path"]):
            with default_storage.open(attachment["path"], "rb") as handle:
                return InputFile(handle.read(), filename=attachment.get("name") or None)
        url = attachment.get("url") or ""
        if url.startswith(("http://", "https://")):
            return url
        raise PermanentSendError(f"The attachment {attachment.get('name') or url} is not available any more.")

    def send(self, channel, message, recipient):
        try:
            chat_id = int(recipient.address)
        except ValueError as exc:
            raise PermanentSendError(f"'{recipient.address}' is not a Telegram chat id.") from exc
        body = message.body or ""
        files = [a for a in message.attachments if a.get("path") or a.get("url")]
        caption = body if files and len(body) <= CAPTION_LIMIT else None
        chunks = (
            [] if caption is not None else [body[i : i + TEXT_LIMIT] for i in range(0, len(body), TEXT_LIMIT)]
        )
        sources = [(a, self._source(a)) for a in files]

        # Answer buttons (a survey's scores): a tap sends the button's text as a plain message.
        buttons = [str(q) for q in (message.meta or {}).get("quick_replies") or []]
        keyboard = (
            ReplyKeyboardMarkup(
                [[KeyboardButton(q) for q in buttons]], one_time_keyboard=True, resize_keyboard=True
            )
            if buttons
            else None
        )

        async def deliver(bot):
            ids = []
            for n, text in enumerate(chunks):
                markup = {"reply_markup": keyboard} if keyboard and n == len(chunks) - 1 else {}
                ids.append((await bot.send_message(chat_id=chat_id, text=text, **markup)).message_id)
            for n, (attachment, source) in enumerate(sources):
                extra = {"caption": caption} if caption and n == 0 else {}
                if (attachment.get("content_type") or "").startswith("image/"):
                    sent = await bot.send_photo(chat_id=chat_id, photo=source, **extra)
                else:
                    sent = await bot.send_document(chat_id=chat_id, document=source, **extra)
                ids.append(sent.message_id)
            return ids

        if not chunks and not sources:
            raise PermanentSendError("The message has no text or attachment to send.")
        try:
            ids = client.run(channel, deliver)
        except TelegramError as exc:
            raise client.send_error(exc) from exc
        return SendResult(external_id=f"{chat_id}:{ids[0]}", meta={"telegram_message_ids": ids})


@receiver(message_created, dispatch_uid="channels_adapters.telegram.fetch_files")
def _fetch_files_of_new_message(sender, message, **kwargs):
    # After commit: the task finds the message, and a rolled-back message fetches nothing.
    if any(a.get("telegram_file_id") and not a.get("path") for a in message.attachments or []):
        try:
            telegram_attachments_fetch_task.delay(message.pk)
        except Exception:  # noqa: BLE001 - the message is stored; its files can be fetched again later
            logger.exception("Could not queue the file download of message %s", message.pk)
