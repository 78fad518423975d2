"""How outreach hears the core: customers' messages (replies, STOP) and our messages' statuses."""

from __future__ import annotations

import logging

from django.db import transaction

from conversations import signals
from conversations.models import Author, Direction, MessageKind

logger = logging.getLogger(__name__)


def _on_message_created(sender, message, **kwargs):
    """After commit: a keyword records consent at once; any customer message stops their outreaches."""
    if message.direction != Direction.IN or message.author != Author.CUSTOMER:
        return
    if message.kind in (MessageKind.NOTE, MessageKind.SYSTEM):
        return
    from outreach import consent, services

    consent.consent_from_message(message)
    # In a drain batch, one look-up at its end for all its customers.
    if not signals.batch_defer(_outreaches_stop, message):
        services.outreaches_stop_on_reply(message=message)


def _outreaches_stop(messages) -> None:
    from outreach import services

    services.outreaches_stop_on_replies(messages=messages)


def _on_domain_event(sender, event, payload, ordering_key, **kwargs):
    """Inside the status change's transaction: only look up, and move the outreach once it commits."""
    if event != "message.status_changed":
        return
    from outreach.models import OutreachStep

    data = payload.get("message") or {}
    message_id = data.get("id")
    # Outreach messages are the bot's: an agent's replies (a watermark receipt covers
    # dozens at once) cost no query here.
    if data.get("direction") != Direction.OUT or data.get("author") != Author.BOT or message_id is None:
        return
    outreach_id = (
        OutreachStep.objects.filter(message_id=message_id).values_list("outreach_id", flat=True).first()
    )
    if outreach_id is None:
        return
    transaction.on_commit(lambda: _advance_now(outreach_id))


def _advance_now(outreach_id: int) -> None:
    from outreach.services import outreach_advance

    try:
        outreach_advance(outreach_id=outreach_id)
    except Exception:  # noqa: BLE001 - the status is recorded; the beat tick moves the outreach on
        logger.exception("Could not advance outreach %s after a status change", outreach_id)


def connect() -> None:
    from outreach.privacy import outreach_erase, outreach_export_sections
    from privacy.signals import customer_erasing, customer_export_sections

    signals.message_created.connect(_on_message_created, dispatch_uid="outreach.message_created")
    signals.domain_event.connect(_on_domain_event, dispatch_uid="outreach.domain_event")
    customer_export_sections.connect(outreach_export_sections, dispatch_uid="outreach.export")
    customer_erasing.connect(outreach_erase, dispatch_uid="outreach.erase")
