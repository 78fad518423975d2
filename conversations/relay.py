"""What the customer sees of the agent's side while the case is being worked: typing, seen.

Told through the channel of the customer's latest message on the case, where the
channel can show it (the website chat does; most providers have nothing for it).
A failure here never reaches the agent: it is a courtesy, not a message.
"""

from __future__ import annotations

import logging

from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations.models import NOT_A_REPLY_SOURCE, Direction, Message

logger = logging.getLogger(__name__)


def _latest_inbound(case_id: int) -> Message | None:
    return (
        Message.objects.filter(
            case_id=case_id, direction=Direction.IN, identity__isnull=False, channel__isnull=False
        )
        .exclude(kind__in=NOT_A_REPLY_SOURCE)
        .select_related("channel", "identity")
        .defer("channel__credentials")
        .order_by("-pk")
        .first()
    )


def _adapter(message: Message):
    try:
        return adapter_for(message.channel.kind)
    except UnsupportedChannel:
        return None


def case_typing_relay(*, case_id: int, name: str, typing: bool = True) -> None:
    message = _latest_inbound(case_id)
    adapter = _adapter(message) if message else None
    if adapter is None:
        return
    try:
        adapter.typing(message.channel, recipient=message.identity, name=name, typing=typing)
    except Exception:  # noqa: BLE001 - see the module docstring
        logger.exception("Could not relay typing on case %s", case_id)


def case_seen_relay(*, case_id: int) -> None:
    message = _latest_inbound(case_id)
    adapter = _adapter(message) if message else None
    if adapter is None:
        return
    try:
        adapter.seen(message.channel, recipient=message.identity, up_to=message.pk)
    except Exception:  # noqa: BLE001 - see the module docstring
        logger.exception("Could not relay seen on case %s", case_id)
