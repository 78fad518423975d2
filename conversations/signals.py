"""Hooks for other apps (KPIs, surveys, SLAs, automation), sent after commit.

case_changed(case, change): change is one of opened, reopened, woken, assigned,
  open, pending, snoozed, resolved, priority, labels.
message_created(message): every new message (inbound, reply, note, system, echo).

Services announce their writes with `message_announce` / `case_announce` from
`transaction.on_commit`: the other apps hear first, then the agents' browsers.
A failing receiver is logged and never stops the push or the write.
"""

import logging

from django.dispatch import Signal

from conversations import realtime

logger = logging.getLogger(__name__)

case_changed = Signal()
message_created = Signal()


def _send(signal: Signal, **kwargs) -> None:
    for receiver, result in signal.send_robust(sender=None, **kwargs):
        if isinstance(result, Exception):
            logger.error("Receiver %r failed", receiver, exc_info=result)


def message_announce(message, case=None) -> None:
    _send(message_created, message=message)
    realtime.publish_message_created(message, case)


def case_announce(case, *, change: str) -> None:
    _send(case_changed, case=case, change=change)
    realtime.publish_case_updated(case, change=change)
