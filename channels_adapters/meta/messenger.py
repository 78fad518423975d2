"""Messenger and Instagram share one webhook shape (``entry[].messaging[]``) and
the Send API (``POST /{version}/me/messages``); this class holds both, and the
two adapters set what differs (identity kind, envelope object, credential
names, receipts, text limit).
"""

from __future__ import annotations

import mimetypes
from typing import ClassVar
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from channels_adapters.base import (
    ChannelAdapter,
    Ignored,
    InboundMessage,
    MessageUpdate,
    OutboundRefused,
    ParseError,
    PermanentSendError,
    Sender,
    SendResult,
    StatusUpdate,
    entries_read,
    message_id_from_reference,
)
from channels_adapters.meta.graph import graph_request
from channels_adapters.meta.selectors import (
    RULE_HUMAN_AGENT,
    RULE_STANDARD,
    last_customer_message_at,
    window_refusal,
    window_rule,
)
from channels_adapters.meta.webhooks import (
    from_millis,
    load_envelope,
    verify_signature,
    verify_token_handshake,
)

# Messenger's "thumbs up" sticker ids: shown as the emoji rather than a picture link.
THUMBS_UP_STICKERS = {"369239263222822", "369239343222814", "369239383222810"}
# Put in the Send API's `metadata`, which comes back on the echo: our own API sends
# are already recorded by the send, so their echo is not a second message.
ECHO_MARK = "helpdesk:"

_ENVELOPE_KEYS = {"sender", "recipient", "timestamp"}
_SEND_TYPES = {"image": "image", "video": "video", "audio": "audio"}


def _content_type(url: str, kind: str) -> str:
    guessed = mimetypes.guess_type(urlsplit(url).path)[0] if url else None
    if guessed:
        return guessed
    return {"image": "image/*", "video": "video/*", "audio": "audio/*"}.get(kind, "")


def public_url(url: str) -> str:
    """Providers fetch our attachments themselves: they need an absolute URL."""
    if url.startswith(("http://", "https://")):
        return url
    return settings.PUBLIC_BASE_URL + "/" + url.lstrip("/")


class MessengerAdapter(ChannelAdapter):
    identity_kind: ClassVar[str]
    webhook_object: ClassVar[str]
    token_key: ClassVar[str]
    text_limit_bytes: ClassVar[int | None] = None
    text_limit_chars: ClassVar[int | None] = None
    # Messenger echoes carry our `metadata`; Instagram does not document it.
    sends_metadata: ClassVar[bool] = False
    ignored_events = (
        "standby",
        "optin",
        "referral",
        "account_linking",
        "policy_enforcement",
        "pass_thread_control",
        "take_thread_control",
        "request_thread_control",
        "app_roles",
        "messaging_handovers",
        "changes (feed, comments, mentions)",
        "message echoes of our own API sends",
    )

    # Inbound ---------------------------------------------------------------

    def handshake(self, channel, request):
        return verify_token_handshake(channel, request)

    def app_secrets(self, channel) -> list[str]:
        return [channel.credentials.get("app_secret", "")]

    def verify(self, channel, request):
        verify_signature(request, *self.app_secrets(channel))

    def parse(self, channel, event):
        payload = load_envelope(event, (self.webhook_object,))
        # Up to 1,000 updates in one POST: each entry and messaging event is read
        # on its own, so one that cannot be read is reported and the rest land.
        return entries_read(payload["entry"], lambda entry: self._entry(channel, entry), where="entry")

    def _entry(self, channel, entry) -> list:
        if not isinstance(entry, dict):
            raise ParseError("Each entry must be an object")
        items = entries_read(
            entry.get("messaging") or [], lambda data: self._event_read(channel, data), where="messaging"
        )
        if entry.get("standby"):
            # Another app (a bot platform) holds the conversation: not ours to answer.
            items.extend(Ignored("standby") for _ in entry["standby"])
        for change in entry.get("changes") or []:
            items.append(Ignored(f"changes:{(change or {}).get('field', '?')}"))
        return items

    def _event_read(self, channel, data) -> list:
        if not isinstance(data, dict):
            raise ParseError("Each messaging event must be an object")
        return self._event(channel, data)

    def _event(self, channel, data: dict) -> list:
        sender_id = str((data.get("sender") or {}).get("id") or "")
        recipient_id = str((data.get("recipient") or {}).get("id") or "")
        at = from_millis(data.get("timestamp"))
        if "message" in data:
            return [self._message(channel, data["message"], sender_id, recipient_id, at)]
        if "delivery" in data:
            watermark = from_millis((data["delivery"] or {}).get("watermark"))
            if watermark is None:
                return [Ignored("delivery:without_watermark")]
            return [self._receipt("delivered", sender_id, watermark)]
        if "read" in data:
            return self._read(data["read"] or {}, sender_id, at)
        if "reaction" in data:
            reaction = data["reaction"] or {}
            removed = reaction.get("action") == "unreact"
            return [
                MessageUpdate(
                    external_id=str(reaction.get("mid") or ""),
                    meta={
                        "reaction": {
                            "emoji": None if removed else reaction.get("emoji") or reaction.get("reaction"),
                            "by": "customer",
                            "at": at.isoformat() if at else None,
                        }
                    },
                    timestamp=at,
                )
            ]
        if "postback" in data:
            postback = data["postback"] or {}
            return [
                InboundMessage(
                    external_id=str(postback.get("mid") or f"postback-{sender_id}-{data.get('timestamp')}"),
                    sender=Sender(self.identity_kind, sender_id),
                    text=str(postback.get("title") or postback.get("payload") or "(button)"),
                    timestamp=at,
                    meta={"postback_payload": postback.get("payload")},
                )
            ]
        if "message_edit" in data:
            edit = data["message_edit"] or {}
            return [
                MessageUpdate(external_id=str(edit.get("mid") or ""), text=edit.get("text"), timestamp=at)
            ]
        unknown = sorted(set(data) - _ENVELOPE_KEYS)
        return [Ignored(unknown[0] if unknown else "empty")]

    @staticmethod
    def _own_send(channel, message: dict) -> bool:
        """An echo of a message this helpdesk sent through the API: the send recorded it already,
        and recording the echo could race the send for the same message id."""
        if str(message.get("metadata") or "").startswith(ECHO_MARK):
            return True
        # Without metadata (Instagram), the app id tells: set settings["app_id"] to ours.
        app_id = str((channel.settings or {}).get("app_id") or "")
        return bool(app_id) and str(message.get("app_id") or "") == app_id

    def _receipt(self, status: str, person_id: str, watermark) -> StatusUpdate:
        return StatusUpdate(
            external_id="",
            status=status,
            timestamp=watermark,
            watermark=watermark,
            recipient=Sender(self.identity_kind, person_id),
        )

    def _read(self, read: dict, reader_id: str, at) -> list:
        watermark = from_millis(read.get("watermark"))
        if watermark is not None:
            return [self._receipt("read", reader_id, watermark)]
        if read.get("mid") and at is not None:
            # Instagram's messaging_seen names the last message seen: it and
            # everything we sent before the moment they looked are read.
            return [
                StatusUpdate(external_id=str(read["mid"]), status="read", timestamp=at),
                self._receipt("read", reader_id, at),
            ]
        return [Ignored("read:without_watermark")]

    def _message(self, channel, message: dict, sender_id: str, recipient_id: str, at):
        if not isinstance(message, dict) or not message.get("mid"):
            raise ParseError("A message event needs 'message.mid'")
        mid = str(message["mid"])
        if message.get("is_deleted"):
            return MessageUpdate(external_id=mid, meta={"deleted_by_customer": True}, timestamp=at)
        echo = bool(message.get("is_echo"))
        if echo and self._own_send(channel, message):
            ours = message_id_from_reference(message.get("metadata"), prefix=ECHO_MARK)
            if ours is not None:
                # The echo of our send names it (metadata): Meta has it. That settles a
                # send whose answer a crash lost; for any other it changes nothing.
                return StatusUpdate(external_id=mid, status="sent", timestamp=at, message_id=ours)
            return Ignored("message_echo:own_send")
        text = str(message.get("text") or "")
        meta: dict = {}
        attachments = []
        extra_lines = []
        for attachment in message.get("attachments") or []:
            kind = str(attachment.get("type") or "")
            payload = attachment.get("payload") or {}
            if kind == "location" or "coordinates" in payload:
                coordinates = payload.get("coordinates") or {}
                lat, long = coordinates.get("lat"), coordinates.get("long")
                meta["location"] = {"latitude": lat, "longitude": long, "title": attachment.get("title")}
                extra_lines.append(f"📍 Location: {lat}, {long} https://maps.google.com/?q={lat},{long}")
                continue
            if payload.get("sticker_id"):
                sticker = str(payload["sticker_id"])
                meta["sticker_id"] = sticker
                if sticker in THUMBS_UP_STICKERS:
                    extra_lines.append("👍")
                    continue
            if kind == "template":
                meta["template"] = payload
                extra_lines.append("(a structured message with buttons)")
                continue
            url = str(payload.get("url") or attachment.get("url") or "")
            attachments.append(
                {
                    "url": url,
                    "type": "sticker" if payload.get("sticker_id") else kind,
                    "content_type": _content_type(url, kind),
                    "name": str(attachment.get("title") or urlsplit(url).path.rsplit("/", 1)[-1]),
                }
            )
            if kind == "fallback" and url:
                extra_lines.append(url)
        if message.get("quick_reply"):
            meta["quick_reply_payload"] = (message["quick_reply"] or {}).get("payload")
        if message.get("reply_to"):
            meta["reply_to"] = (message["reply_to"] or {}).get("mid") or message["reply_to"]
        text = "\n".join(part for part in [text, *extra_lines] if part)
        if not text and not attachments:
            text = "(an empty or unsupported message)"
        person = recipient_id if echo else sender_id
        return InboundMessage(
            external_id=mid,
            sender=Sender(self.identity_kind, person),
            text=text,
            kind="media" if attachments and not text else "text",
            attachments=attachments,
            timestamp=at,
            meta=meta,
            echo=echo,
        )

    # Outbound --------------------------------------------------------------

    def _window(self, channel, recipient, last_inbound_at=None) -> dict:
        if last_inbound_at is not None:
            state = window_rule(channel=channel, last_at=last_inbound_at)
            if state["open"]:
                return state  # the caller's read: the customer wrote at least that recently
        return window_rule(
            channel=channel, last_at=last_customer_message_at(channel=channel, identity=recipient)
        )

    def check_outbound(self, channel, *, thread, recipient, meta=None, last_inbound_at=None):
        state = self._window(channel, recipient, last_inbound_at)
        if not state["open"]:
            raise OutboundRefused(window_refusal(channel=channel, state=state))

    def _check_length(self, text: str):
        if self.text_limit_bytes and len(text.encode()) > self.text_limit_bytes:
            raise PermanentSendError(
                f"{self.name()} accepts {self.text_limit_bytes:,} bytes per message and this one has "
                f"{len(text.encode()):,}: shorten it or split it in two."
            )
        if self.text_limit_chars and len(text) > self.text_limit_chars:
            raise PermanentSendError(
                f"{self.name()} accepts {self.text_limit_chars:,} characters per message and this one "
                f"has {len(text):,}: shorten it or split it in two."
            )

    def name(self) -> str:
        return {"facebook": "Messenger", "instagram": "Instagram"}.get(self.kind, self.kind)

    def message_body(self, message) -> dict:
        """One Send API call per message: a retry can never send half of it twice."""
        text = message.body or ""
        attachments = [a for a in message.attachments or [] if a.get("url")]
        if len(attachments) == 1 and not text:
            only = attachments[0]
            kind = _SEND_TYPES.get(str(only.get("content_type", "")).split("/")[0], "file")
            return {
                "attachment": {
                    "type": kind,
                    "payload": {"url": public_url(only["url"]), "is_reusable": False},
                }
            }
        # The Send API carries one attachment per message: further files go as links.
        links = [public_url(a["url"]) for a in attachments]
        text = "\n".join(part for part in [text, *links] if part)
        self._check_length(text)
        body = {"text": text}
        # Answer buttons (a survey's scores); a tap comes back as a text message. Meta allows 13.
        buttons = [str(q)[:20] for q in (message.meta or {}).get("quick_replies") or []][:13]
        if buttons:
            body["quick_replies"] = [{"content_type": "text", "title": q, "payload": q} for q in buttons]
        return body

    def send(self, channel, message, recipient):
        state = self._window(channel, recipient)
        body = {"recipient": {"id": recipient.address}, "message": self.message_body(message)}
        if state["rule"] == RULE_STANDARD:
            body["messaging_type"] = "RESPONSE"
        elif state["rule"] == RULE_HUMAN_AGENT and message.author != "bot":
            body["messaging_type"] = "MESSAGE_TAG"
            body["tag"] = "HUMAN_AGENT"
        elif state["rule"] == RULE_HUMAN_AGENT:
            raise PermanentSendError(
                f"More than 24 hours have passed since the customer last wrote on {self.name()}: "
                "only a person may answer now (the human agent tag), not an automatic message."
            )
        else:
            raise PermanentSendError(window_refusal(channel=channel, state=state))
        if self.sends_metadata:
            body["message"]["metadata"] = f"{ECHO_MARK}{message.pk}"
        answer = graph_request(
            "POST", "me/messages", token=channel.credentials.get(self.token_key, ""), json=body
        )
        external_id = answer.get("message_id") or f"helpdesk-{message.pk}"
        return SendResult(
            external_id=str(external_id),
            meta={"messaging_type": body["messaging_type"], "sent_at": timezone.now().isoformat()},
        )
