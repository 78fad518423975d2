"""Writes of commitments: mark a message as a promise, fulfil it, withdraw it.

Each one leaves a system event on the customer's thread in the same transaction
(the timeline is the record of what was promised and what became of it), and
after commit tells the browsers of whoever may see the case (conversations/realtime.py).
"""

from __future__ import annotations

from datetime import date, datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commitments import selectors
from commitments.models import Commitment, CommitmentStatus
from conversations import realtime, signals
from conversations.models import Message, MessageKind
from conversations.services import system_event_add

TEXT_MAX = 1000
NOTE_MAX = 300
COMMITMENT_CHANGED = "commitment.changed"


def _who(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "automation"


def commitment_payload(commitment: Commitment) -> dict:
    return {
        "id": commitment.pk,
        "customer_id": commitment.customer_id,
        "case_id": commitment.case_id,
        "message_id": commitment.message_id,
        "text": commitment.text,
        "due_on": commitment.due_on.isoformat() if commitment.due_on else None,
        "status": commitment.status,
        "created_by_id": commitment.created_by_id,
        "created_at": commitment.created_at.isoformat(),
        "closed_by_id": commitment.closed_by_id,
        "closed_at": commitment.closed_at.isoformat() if commitment.closed_at else None,
    }


def _announce(event: str, commitment: Commitment, case) -> None:
    """Inside the transaction: the webhook outbox row; after commit: the live push."""
    payload = commitment_payload(commitment)
    signals.domain_event_emit(event, {"commitment": payload}, f"customer:{commitment.customer_id}")
    data = {"commitment": payload, "change": event}

    def push():
        if case is not None:
            realtime.publish(COMMITMENT_CHANGED, data, case=case)
        else:
            realtime.publish(COMMITMENT_CHANGED, data, everyone=True)

    transaction.on_commit(push)


def _clean_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError(_("Say what was promised."))
    if len(text) > TEXT_MAX:
        raise ValidationError(_("Keep the commitment under %(max)d characters.") % {"max": TEXT_MAX})
    return text


def commitment_create(
    *, message: Message, text: str, by, due_on: date | None = None, at: datetime | None = None
) -> Commitment:
    """Mark a message (the customer's, an agent's, a note) as a promise to the customer.

    `at`: when it was marked, for history written after the fact (the demo data).
    """
    if message.kind == MessageKind.SYSTEM:
        raise ValidationError(
            _("An event line cannot be a commitment; mark the message where it was promised.")
        )
    if by is not None and not selectors.message_markable(user=by, message=message):
        raise PermissionDenied(_("That message is on a case you may not work on."))
    text = _clean_text(text)
    now = at or timezone.now()
    if due_on is not None and due_on < timezone.localdate(now):
        raise ValidationError(_("The due date is in the past; pick today or a later day."))
    with transaction.atomic():
        # The customer now, not when the form was opened: a merge may have moved the message.
        message = Message.objects.select_related("thread", "case").get(pk=message.pk)
        commitment = Commitment.objects.create(
            message=message,
            customer_id=message.thread.customer_id,
            case=message.case,
            text=text,
            due_on=due_on,
            created_by=by,
            created_at=now,
        )
        due = f" (due {due_on.isoformat()})" if due_on else ""
        # Stored in English like every event line; the text itself is the agent's words.
        event = system_event_add(
            thread=message.thread,
            case=message.case,
            text=f"Commitment recorded by {_who(by)}: “{text}”{due}",
            by=by,
        )
        if at is not None:
            # Marked after the fact: the event line sits where it happened in the timeline.
            Message.objects.filter(pk=event.pk).update(created_at=at)
        _announce("commitment.created", commitment, message.case)
    return commitment


def _close(*, commitment: Commitment, by, status: str, note: str, verb: str) -> Commitment:
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ValidationError(_("Keep the note under %(max)d characters.") % {"max": NOTE_MAX})
    with transaction.atomic():
        commitment = (
            Commitment.objects.select_for_update(of=("self",))
            .select_related("case", "message__thread")
            .get(pk=commitment.pk)
        )
        if by is not None and not selectors.commitment_actable(user=by, commitment=commitment):
            raise PermissionDenied(_("That commitment is on a case you may not work on."))
        if not commitment.is_open:
            raise ValidationError(
                _("This commitment is already %(status)s.")
                % {"status": commitment.get_status_display().lower()}
            )
        commitment.status = status
        commitment.closed_by = by
        commitment.closed_at = timezone.now()
        commitment.close_note = note
        commitment.save(update_fields=["status", "closed_by", "closed_at", "close_note"])
        system_event_add(
            thread=commitment.message.thread,
            case=commitment.case,
            text=f"Commitment {verb} by {_who(by)}: “{commitment.text}”" + (f" ({note})" if note else ""),
            by=by,
        )
        _announce(f"commitment.{status}", commitment, commitment.case)
    return commitment


def commitment_fulfil(*, commitment: Commitment, by, note: str = "") -> Commitment:
    return _close(
        commitment=commitment, by=by, status=CommitmentStatus.FULFILLED, note=note, verb="fulfilled"
    )


def commitment_withdraw(*, commitment: Commitment, by, note: str = "") -> Commitment:
    return _close(
        commitment=commitment, by=by, status=CommitmentStatus.WITHDRAWN, note=note, verb="withdrawn"
    )
