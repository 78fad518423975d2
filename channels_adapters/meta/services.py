"""Writes for the Meta channels: fetching media WhatsApp only gives by id."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging

from django.db import transaction

from channels_adapters.base import PermanentSendError, SendError, TransientSendError
from channels_adapters.meta.graph import graph_download, graph_request

logger = logging.getLogger(__name__)


def _checksum_hex(value: str) -> str:
    """Meta gives a file's SHA-256 as hex (media endpoint) or base64 (webhook); '' if neither."""
    value = (value or "").strip()
    if len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return raw.hex() if len(raw) == 32 else ""


def pending_media(message) -> list[dict]:
    return [
        a for a in message.attachments or [] if a.get("media_id") and not a.get("path") and not a.get("error")
    ]


def _fetch_one(attachment: dict, token: str) -> dict:
    from conversations.attachments import attachment_save

    # GET /{media-id} answers a short-lived URL (about 5 minutes), fetched with the same token.
    info = graph_request("GET", attachment["media_id"], token=token)
    if not info.get("url"):
        raise PermanentSendError("Meta did not give a download URL for this media.")
    content, served_type = graph_download(str(info["url"]), token=token)
    expected = _checksum_hex(str(info.get("sha256") or "")) or _checksum_hex(attachment.get("sha256", ""))
    if expected and hashlib.sha256(content).hexdigest() != expected:
        raise TransientSendError("The downloaded media does not match its checksum; retrying.")
    record = attachment_save(
        content=content,
        name=attachment.get("name") or "",
        content_type=attachment.get("content_type") or str(info.get("mime_type") or "") or served_type,
    )
    return {**attachment, **record}


def whatsapp_media_fetch(*, message_id: int, final: bool = True) -> list[dict]:
    """Download a message's media by id into our storage and put the files on the message.

    A transient failure is raised for the task to retry unless `final`; a
    permanent one (or the last try) is written on the attachment for the agent.
    Returns the message's attachments after the fetch.
    """
    from conversations.models import Message
    from conversations.realtime import publish_message_updated

    message = Message.objects.select_related("channel").filter(pk=message_id).first()
    if message is None or message.channel is None:
        return []
    token = message.channel.credentials.get("access_token", "")
    results: dict[str, dict] = {}
    for attachment in pending_media(message):
        try:
            results[attachment["media_id"]] = _fetch_one(attachment, token)
        except TransientSendError:
            if not final:
                raise
            results[attachment["media_id"]] = {
                **attachment,
                "error": "Could not download the media from Meta.",
            }
        except SendError as exc:
            logger.warning("Media %s of message %s: %s", attachment["media_id"], message_id, exc.reason)
            results[attachment["media_id"]] = {**attachment, "error": exc.reason}
    if not results:
        return message.attachments
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        message.attachments = [
            results.get(a.get("media_id"), a) if not a.get("path") else a for a in message.attachments
        ]
        message.save(update_fields=["attachments"])
        transaction.on_commit(lambda: publish_message_updated(message))
    return message.attachments
