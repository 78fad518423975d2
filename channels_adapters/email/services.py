"""Writes of the email channel: linking a replying address, recording our headers, polling state."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from channels_adapters.email.models import MailboxState
from channels_adapters.email.parsing import Part, message_id_normalize, read_headers
from channels_adapters.models import Channel, InboundEvent
from conversations.attachments import attachment_save
from conversations.models import Message
from customers.models import Customer, Identity, IdentityKind
from customers.services import identity_add


def email_sender_link(*, customer_id: int, address: str) -> Identity | None:
    """A new address answered our mail (by its Message-ID or signed reply token): it joins
    that customer, so the reply lands on their one thread. A known address never moves."""
    address = address.strip().lower()
    if Identity.objects.filter(kind=IdentityKind.EMAIL, address=address).exists():
        return None
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return None
    return identity_add(customer=customer, kind=IdentityKind.EMAIL, address=address)


def email_parts_store(*, raw: bytes, parts: list[Part], html: str) -> tuple[list[dict], dict]:
    """Attachments, inline images and the untouched original, kept with Django's storage.

    Returns the attachment records for the message and the meta keys pointing at the original."""
    attachments = []
    for part in parts:
        record = attachment_save(content=part.content, name=part.filename, content_type=part.content_type)
        if part.content_id:
            record["content_id"] = part.content_id
        record["inline"] = part.inline
        attachments.append(record)
    original = attachment_save(content=raw, name="original.eml", content_type="message/rfc822")
    meta = {"original_eml_path": original["path"], "original_eml_url": original["url"]}
    if html:
        kept = attachment_save(content=html.encode(), name="original.html", content_type="text/html")
        meta["original_html_path"] = kept["path"]
    return attachments, meta


def email_outbound_meta_record(*, message_id: int, meta: dict) -> None:
    """Our headers on the outbound message, so replies and bounces can find it."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        message.meta = {**message.meta, **meta}
        message.save(update_fields=["meta"])


def mailbox_state_get(*, channel: Channel, folder: str) -> MailboxState:
    state, _ = MailboxState.objects.get_or_create(channel=channel, folder=folder)
    return state


def imap_messages_store(
    *,
    channel: Channel,
    folder: str,
    uidvalidity: int,
    fetched: list[tuple[int, bytes]],
    seen_through: int = 0,
) -> tuple[list[int], int]:
    """Keep fetched mail as inbound events and move the folder's UID mark past them, together.

    Mail whose Message-ID is already a message on this channel (fetched again
    after a UIDVALIDITY change, or appended twice) is not stored again.
    `seen_through` moves the mark past UIDs deliberately not fetched (the read
    history of a mailbox connected for the first time).
    Returns (stored event ids, duplicates skipped)."""
    from channels_adapters.services import inbound_events_enqueue_on_commit

    stored, duplicates = [], 0
    with transaction.atomic():
        state, _ = MailboxState.objects.select_for_update().get_or_create(channel=channel, folder=folder)
        seen_now: set[str] = set()
        for uid, raw in fetched:
            message_id = message_id_normalize(str(read_headers(raw).get("Message-ID") or ""))
            if message_id and (
                message_id in seen_now
                or Message.objects.filter(channel=channel, external_id=message_id).exists()
            ):
                duplicates += 1
                continue
            seen_now.add(message_id)
            event = InboundEvent.objects.create(
                channel=channel,
                body=raw,
                headers={
                    "X-Imap-Folder": folder,
                    "X-Imap-Uid": str(uid),
                    "X-Imap-Uidvalidity": str(uidvalidity),
                },
                content_type="message/rfc822",
            )
            stored.append(event.pk)
        if state.uidvalidity != uidvalidity:
            state.uidvalidity, state.last_uid = uidvalidity, 0
        state.last_uid = max([state.last_uid, seen_through, *(uid for uid, _ in fetched)])
        state.polled_at = timezone.now()
        state.last_error = ""
        state.save()
        inbound_events_enqueue_on_commit(stored)
    return stored, duplicates


def mailbox_state_error(*, channel: Channel, folder: str, error: str) -> None:
    MailboxState.objects.update_or_create(
        channel=channel, folder=folder, defaults={"last_error": error, "polled_at": timezone.now()}
    )
