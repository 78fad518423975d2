"""The generic API channel: any system that can POST signed JSON.

Inbound: ``POST /hooks/<key>/`` with ``X-Signature: sha256=<hex HMAC-SHA256 of
the raw body with the channel secret>`` and one message
``{"external_id", "from": {"email"|"phone"|"id", "name"}, "text", "timestamp"}``,
a batch ``{"messages": [...]}``, or a delivery update
``{"type": "status", "external_id", "status", "error"}``; ``"message_id"`` (our
``id`` from the callback) may stand in for, or come with, ``external_id``.

Outbound: our reply is POSTed as JSON to the channel's ``callback_url``, signed
the same way, so the receiver checks it with the code it already has. The
``Idempotency-Key`` header is the same on every attempt and every Retry of one
message: a receiver that keeps it drops a repeat after a send whose answer
we lost. A channel whose settings say ``"receiver_keeps_idempotency_keys":
true`` has a send a crash cut short sent again on its own; otherwise the
agent sees "may have been sent" and decides.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
from django.conf import settings
from django.utils.dateparse import parse_datetime

from channels_adapters.base import (
    ChannelAdapter,
    Ignored,
    InboundMessage,
    ParseError,
    PermanentSendError,
    Sender,
    SendResult,
    StatusUpdate,
    TransientSendError,
    check_prefixed_signature,
    entries_read,
    hmac_sha256_hex,
    message_id_from_reference,
    message_reference,
)
from channels_adapters.http import provider_http
from customers.models import IdentityKind

SIGNATURE_HEADER = "X-Signature"
STATUSES = {"sent", "delivered", "read", "failed"}


def _timestamp(value) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        # Milliseconds are common in JSON APIs; seconds stay below 1e11 until 5138.
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ParseError(f"'timestamp' {value!r} is neither ISO 8601 nor a Unix time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sender(data: dict, channel_key: str) -> Sender:
    sender = data.get("from")
    if not isinstance(sender, dict):
        raise ParseError("'from' must be an object with 'email', 'phone' or 'id'")
    name = str(sender.get("name") or "")
    if sender.get("email"):
        return Sender(IdentityKind.EMAIL, str(sender["email"]), name)
    if sender.get("phone"):
        return Sender(IdentityKind.PHONE, str(sender["phone"]), name)
    if sender.get("id") not in (None, ""):
        # Ids are the integrating system's own: scope them to the channel so two
        # integrations never mistake each other's users for one person.
        return Sender(IdentityKind.API, f"{channel_key}:{sender['id']}", name)
    raise ParseError("'from' needs one of 'email', 'phone' or 'id'")


class ApiAdapter(ChannelAdapter):
    kind = "api"
    identity_kinds = (IdentityKind.API, IdentityKind.EMAIL, IdentityKind.PHONE)
    credential_keys = ("secret", "callback_url")

    def verify(self, channel, request):
        secret = channel.credentials.get("secret", "")
        check_prefixed_signature(request.headers.get(SIGNATURE_HEADER), hmac_sha256_hex(secret, request.body))

    def parse(self, channel, event):
        try:
            payload = json.loads(event.body_bytes)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParseError(f"The body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise ParseError("The body must be a JSON object")
        entries = payload.get("messages", [payload])
        if not isinstance(entries, list):
            raise ParseError("'messages' must be a list")
        # Each message of a batch on its own: one that cannot be read is reported, the others land.
        return entries_read(entries, lambda entry: self._item(channel, entry), where="messages")

    def _item(self, channel, data):
        if not isinstance(data, dict):
            raise ParseError("Each message must be a JSON object")
        kind = data.get("type", "message")
        if kind == "status":
            status = data.get("status")
            message_id = message_id_from_reference(data.get("message_id"), prefix="")
            if status not in STATUSES or not (data.get("external_id") or message_id):
                raise ParseError(
                    f"A status needs 'external_id' or 'message_id', and one of {sorted(STATUSES)}"
                )
            return StatusUpdate(
                external_id=str(data.get("external_id") or ""),
                status=status,
                error=str(data.get("error") or ""),
                timestamp=_timestamp(data.get("timestamp")),
                message_id=message_id,
            )
        if kind != "message":
            return Ignored(event=str(kind))
        if not data.get("external_id"):
            raise ParseError("A message needs an 'external_id'")
        text = data.get("text") or ""
        attachments = data.get("attachments") or []
        if not isinstance(text, str) or not isinstance(attachments, list):
            raise ParseError("'text' must be a string and 'attachments' a list")
        if not text and not attachments:
            raise ParseError("A message needs 'text' or 'attachments'")
        return InboundMessage(
            external_id=str(data["external_id"]),
            sender=_sender(data, channel.key),
            text=text,
            kind="text" if text or not attachments else "media",
            attachments=[
                {
                    "url": str(a.get("url", "")),
                    "content_type": str(a.get("content_type", "")),
                    "name": str(a.get("name", "")),
                }
                for a in attachments
                if isinstance(a, dict)
            ],
            timestamp=_timestamp(data.get("timestamp")),
        )

    def dedupes_resends(self, channel):
        return bool((channel.settings or {}).get("receiver_keeps_idempotency_keys"))

    def send(self, channel, message, recipient):
        url = channel.credentials.get("callback_url")
        if not url:
            raise PermanentSendError(
                "This API channel has no callback URL: an admin must set 'callback_url'."
            )
        address = recipient.address
        if recipient.kind == IdentityKind.API:
            address = address.split(":", 1)[-1]
        body = json.dumps(
            {
                "type": "message",
                "id": message.pk,
                "case": message.case_id,
                "customer": message.thread.customer_id,
                "to": {"id" if recipient.kind == IdentityKind.API else recipient.kind: address},
                "text": message.body,
                "attachments": message.attachments,
                "created_at": message.created_at.isoformat(),
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: "sha256=" + hmac_sha256_hex(channel.credentials["secret"], body),
            # Lets the receiver drop a repeat of a delivery it already has.
            "Idempotency-Key": message_reference(message),
        }
        try:
            response = provider_http().post(
                url,
                content=body,
                headers=headers,
                timeout=settings.HELPDESK["HTTP_TIMEOUT_SECONDS"],
            )
        except httpx.TimeoutException as exc:
            raise TransientSendError(f"The API callback did not answer in time ({exc}).") from exc
        except httpx.HTTPError as exc:
            raise TransientSendError(f"Could not reach the API callback: {exc}.") from exc
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = response.headers.get("Retry-After")
            raise TransientSendError(
                f"The API callback answered HTTP {response.status_code}; retrying.",
                code=str(response.status_code),
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if response.status_code >= 400:
            raise PermanentSendError(
                f"The API callback refused the message (HTTP {response.status_code}): {response.text[:300]}",
                code=str(response.status_code),
            )
        external_id = f"hd-{message.pk}"
        try:
            answer = response.json()
            if isinstance(answer, dict) and (answer.get("external_id") or answer.get("id")):
                external_id = str(answer.get("external_id") or answer.get("id"))
        except ValueError:
            pass
        return SendResult(external_id=external_id)
