"""Twilio Programmable Messaging: what SMS and WhatsApp-through-Twilio have in common.

Inbound (form-encoded, signed): ``MessageSid``, ``From``, ``To``, ``Body``,
``NumMedia``, ``MediaUrl{n}``, ``MediaContentType{n}``; WhatsApp writes
addresses as ``whatsapp:+E164`` and adds ``ProfileName``, ``WaId``, and for a
shared location ``Latitude``/``Longitude``. The sender's number is the
customer's `phone` identity (E.164), the same one WhatsApp Cloud and calls use.

Status callbacks come to the same URL with ``?event=status&message=<our id>``
(we set it as ``status_callback`` on every send; Twilio signs the query too):
``MessageStatus`` sent / delivered / read / undelivered / failed (+ ``ErrorCode``).
Our id settles a send whose answer a crash lost: the callback brings the SID.
queued, accepted, scheduled and sending are Twilio's own steps before "sent" and are ignored on purpose.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from channels_adapters.base import (
    ChannelAdapter,
    Ignored,
    InboundMessage,
    OutboundRefused,
    ParseError,
    PermanentSendError,
    Sender,
    SendResult,
    StatusUpdate,
    message_id_from_reference,
)
from channels_adapters.twilio import common
from customers.models import IdentityKind

_STATUS = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
}
_IGNORED_STATUSES = ("queued", "accepted", "scheduled", "sending", "receiving", "received", "canceled")


def _absolute(url: str) -> str:
    # Twilio fetches media itself: files we store are served under our public URL.
    return url if url.startswith(("http://", "https://")) else common.public_base_url() + url


class TwilioMessagingAdapter(ChannelAdapter):
    identity_kinds = (IdentityKind.PHONE,)
    credential_keys = ("account_sid", "auth_token", "phone_number")
    echoes_sends = False  # only the customer's messages come in
    ignored_events = (*(f"status:{s}" for s in _IGNORED_STATUSES), "empty-message")
    address_prefix = ""

    def verify(self, channel, request):
        common.verify_signature(channel, request)

    def register_webhook(self, channel):
        return common.configure_number(channel, sms_url=common.hook_url(channel), sms_method="POST")

    def acknowledge(self, channel, event):
        # An empty TwiML document: no automatic reply, and no schema warning in Twilio's console.
        return common.twiml_response(common.EMPTY_TWIML)

    def parse(self, channel, event):
        data = common.form(event)
        if common.event_name(event) == "status" or (
            data.get("MessageStatus") and data.get("MessageStatus") not in ("received", "receiving")
        ):
            return [self._status(data, common.query_param(event, "message"))]
        return [self._inbound(data)]

    def _status(self, data, message_id: str = ""):
        sid = data.get("MessageSid") or data.get("SmsSid")
        raw = (data.get("MessageStatus") or data.get("SmsStatus") or "").lower()
        if not sid or not raw:
            raise ParseError("A status callback needs MessageSid and MessageStatus")
        status = _STATUS.get(raw)
        if status is None:
            return Ignored(event=f"status:{raw}")
        error = ""
        if status == "failed":
            error = common.plain_reason(data.get("ErrorCode"), data.get("ErrorMessage", ""))
        return StatusUpdate(
            external_id=sid,
            status=status,
            error=error,
            message_id=message_id_from_reference(message_id, prefix=""),
        )

    def _inbound(self, data):
        sid = data.get("MessageSid") or data.get("SmsMessageSid") or data.get("SmsSid")
        sender = data.get("From")
        if not sid or not sender:
            raise ParseError("An inbound message needs MessageSid and From")
        text = data.get("Body", "")
        try:
            count = int(data.get("NumMedia") or 0)
        except ValueError as exc:
            raise ParseError(f"NumMedia {data.get('NumMedia')!r} is not a number") from exc
        attachments = [
            {"url": data[f"MediaUrl{n}"], "content_type": data.get(f"MediaContentType{n}", ""), "name": ""}
            for n in range(count)
            if data.get(f"MediaUrl{n}")
        ]
        meta = {"to": data.get("To", "")}
        if data.get("Latitude") and data.get("Longitude"):
            meta["location"] = {
                "latitude": data["Latitude"],
                "longitude": data["Longitude"],
                "label": data.get("Label", ""),
                "address": data.get("Address", ""),
            }
            text = text or f"Location: {data['Latitude']}, {data['Longitude']}"
        if data.get("ButtonPayload"):
            meta["button_payload"] = data["ButtonPayload"]
            text = text or data.get("ButtonText", "")
        if not text and not attachments:
            # Nothing to show an agent (a WhatsApp reaction or a type Twilio does not forward).
            return Ignored(event=f"empty-message:{data.get('MessageType') or 'sms'}")
        return InboundMessage(
            external_id=sid,
            sender=Sender(IdentityKind.PHONE, sender, data.get("ProfileName", "")),
            text=text,
            kind="text" if text else "media",
            attachments=attachments,
            meta=meta,
        )

    def _address(self, number: str) -> str:
        if self.address_prefix and not number.startswith(self.address_prefix):
            return self.address_prefix + number
        return number

    def _create_kwargs(self, channel, message, recipient) -> dict:
        credentials = channel.credentials
        kwargs = {
            "to": self._address(recipient.address),
            "status_callback": common.hook_url(channel, event="status", message=message.pk),
        }
        if credentials.get("messaging_service_sid"):
            kwargs["messaging_service_sid"] = credentials["messaging_service_sid"]
        elif credentials.get("phone_number"):
            kwargs["from_"] = self._address(credentials["phone_number"])
        else:
            raise PermanentSendError(f"The channel {channel.name} has no phone number to send from.")
        if message.body:
            kwargs["body"] = message.body
        media = [_absolute(a["url"]) for a in message.attachments if a.get("url")]
        if media:
            kwargs["media_url"] = media
        return kwargs

    def send(self, channel, message, recipient):
        client = common.rest_client(channel)
        try:
            created = client.messages.create(**self._create_kwargs(channel, message, recipient))
        except Exception as exc:  # noqa: BLE001 - send_error re-raises what it does not know
            raise common.send_error(exc) from exc
        if created.status in ("failed", "undelivered"):
            raise PermanentSendError(common.plain_reason(created.error_code, created.error_message or ""))
        return SendResult(external_id=created.sid, meta={"twilio_status": created.status})


class WhatsAppWindowMixin:
    """WhatsApp allows free-form messages for 24 hours after the customer's last message."""

    window = timedelta(hours=24)

    def register_webhook(self, channel):
        raise NotImplementedError(
            "WhatsApp senders are configured in Twilio's console (Messaging > Senders): set "
            f"'Webhook URL for incoming messages' to {common.hook_url(channel)} (HTTP POST)."
        )

    def check_outbound(self, channel, *, thread, recipient, meta, last_inbound_at=None):
        from conversations.models import Direction, Message

        if meta.get("template"):
            return
        since = timezone.now() - self.window
        recent = Message.objects.filter(
            channel=channel, identity=recipient, direction=Direction.IN, created_at__gte=since
        ).exists()
        if not recent:
            raise OutboundRefused(
                "More than 24 hours have passed since the customer last wrote on WhatsApp: "
                "only an approved template can be sent now."
            )

    def _create_kwargs(self, channel, message, recipient):
        kwargs = super()._create_kwargs(channel, message, recipient)
        template = message.meta.get("template")
        if template:
            # A Twilio Content template: {"content_sid": "HX...", "variables": {"1": "Ana"}} or the SID.
            if isinstance(template, str):
                template = {"content_sid": template}
            kwargs["content_sid"] = template.get("content_sid")
            if template.get("variables"):
                kwargs["content_variables"] = json.dumps(template["variables"])
        return kwargs
