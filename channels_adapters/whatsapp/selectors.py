"""Reads of the WhatsApp channel."""

from __future__ import annotations


def whatsapp_message_known(*, channel, external_id: str) -> bool:
    """Whether an edit or a revoke has an original here to change."""
    from conversations.models import Message

    return bool(external_id) and Message.objects.filter(channel=channel, external_id=external_id).exists()
