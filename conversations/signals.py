"""Hooks for other apps (KPIs, surveys, SLAs, automation), sent after commit.

case_changed(case, change): change is one of opened, reopened, woken, assigned,
  open, pending, snoozed, resolved.
message_created(message): every new message (inbound, reply, note, system, echo).
"""

from django.dispatch import Signal

case_changed = Signal()
message_created = Signal()
