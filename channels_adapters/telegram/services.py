"""Writes the Telegram channel makes beyond the shared inbound path."""

from __future__ import annotations

import logging

from django.db import transaction
from telegram.error import BadRequest, TelegramError

from channels_adapters.telegram import client
from conversations import realtime
from conversations.attachments import attachment_save
from conversations.models import Message
from customers.identity import phone_normalize
from customers.models import Identity, IdentityKind
from customers.services import identity_add, identity_resolve, merge_customers

logger = logging.getLogger(__name__)


def telegram_contact_link(*, telegram_id: str, phone: str, name: str = "") -> Identity:
    """A Telegram user shared their own phone number: one customer owns both addresses.

    Sharing one's own contact is the customer's consent to be recognised by it.
    The phone's customer keeps the record (it usually has the longer history on
    SMS, WhatsApp and calls); a separate Telegram-only customer is merged into it.
    Returns the Telegram identity. Safe to run again.
    """
    phone = phone_normalize(phone)
    telegram_id = str(telegram_id)
    with transaction.atomic():
        by_phone = (
            Identity.objects.select_related("customer").filter(kind=IdentityKind.PHONE, address=phone).first()
        )
        by_telegram = (
            Identity.objects.select_related("customer")
            .filter(kind=IdentityKind.TELEGRAM, address=telegram_id)
            .first()
        )
        if by_phone and by_telegram:
            if by_phone.customer_id != by_telegram.customer_id:
                merge_customers(survivor=by_phone.customer, merged=by_telegram.customer)
                by_telegram.refresh_from_db()
            return by_telegram
        if by_phone:
            return identity_add(customer=by_phone.customer, kind=IdentityKind.TELEGRAM, address=telegram_id)
        telegram = by_telegram or identity_resolve(kind=IdentityKind.TELEGRAM, address=telegram_id, name=name)
        identity_add(customer=telegram.customer, kind=IdentityKind.PHONE, address=phone)
        return telegram


def telegram_attachments_fetch(*, message_id: int) -> int:
    """Download the files of a Telegram message (getFile) into our storage. Returns how many.

    Telegram keeps files behind the bot token: agents' browsers cannot load them
    from Telegram, so we keep a copy. A file Telegram refuses (over the Bot API's
    20 MB limit) is marked with the reason and not tried again; network trouble
    raises a SendError (TransientSendError) for the task to retry.
    """
    message = Message.objects.select_related("channel").filter(pk=message_id).first()
    if message is None or message.channel is None:
        return 0
    pending = [a for a in message.attachments if a.get("telegram_file_id") and not a.get("path")]
    if not pending:
        return 0

    async def download(bot):
        results = {}
        for attachment in pending:
            file_id = attachment["telegram_file_id"]
            try:
                remote = await bot.get_file(file_id)
                results[file_id] = bytes(await remote.download_as_bytearray())
            except BadRequest as exc:
                results[file_id] = exc
        return results

    try:
        downloaded = client.run(message.channel, download)
    except TelegramError as exc:
        raise client.send_error(exc) from exc
    stored = {}
    for attachment in pending:
        content = downloaded.get(attachment["telegram_file_id"])
        if isinstance(content, BaseException):
            stored[attachment["telegram_file_id"]] = {
                "error": f"Telegram would not give us the file: {content}"
            }
        elif content is not None:
            stored[attachment["telegram_file_id"]] = attachment_save(
                content=content,
                name=attachment.get("name", ""),
                content_type=attachment.get("content_type", ""),
            )
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        message.attachments = [
            {**a, **stored[a["telegram_file_id"]]} if a.get("telegram_file_id") in stored else a
            for a in message.attachments
        ]
        message.save(update_fields=["attachments"])
        transaction.on_commit(lambda: realtime.publish_message_updated(message))
    return sum(1 for s in stored.values() if "path" in s)
