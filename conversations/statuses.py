"""What providers tell us about our messages after the send: status callbacks, watermarks, edits.

Status callbacks only move a message forward. One naming a message of ours
that has no outcome yet (a send a crash cut short, or still waiting in its
batch) settles it: the provider's word is the outcome.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from channels_adapters.base import Sender
from conversations import realtime, signals
from conversations.models import (
    DELIVERY_RANK,
    DeliveryAttempt,
    DeliveryStatus,
    Direction,
    Message,
)
from conversations.services import (
    case_lock_for_message,
    case_response_record,
    case_response_withdraw,
)

_STATUS_TIME_FIELD = {
    DeliveryStatus.SENT: "sent_at",
    DeliveryStatus.DELIVERED: "delivered_at",
    DeliveryStatus.READ: "read_at",
}


def message_status_update(
    *,
    channel,
    external_id: str,
    status: str,
    error: str = "",
    at: datetime | None = None,
    message_id: int | None = None,
) -> bool:
    """A provider's delivery callback. Status only moves forward; returns whether it moved.

    `message_id` is our own id echoed by the provider (Twilio's callback URL,
    WhatsApp's biz_opaque_callback_data, the API channel): it settles a send
    whose answer we never got, so an interrupted send is not shown as failed
    nor sent a second time.
    """
    if status == DeliveryStatus.FAILED:
        allowed_from = [DeliveryStatus.QUEUED, DeliveryStatus.UNKNOWN, DeliveryStatus.SENT]
    elif status in DELIVERY_RANK and status != DeliveryStatus.UNKNOWN:
        allowed_from = [s for s, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[status]]
    else:
        raise ValidationError(f"Unknown delivery status '{status}'.")
    values = {"status": status}
    if status == DeliveryStatus.FAILED:
        values["error"] = error or gettext("The provider reported the message as not delivered.")
    elif status != DeliveryStatus.QUEUED:
        values[_STATUS_TIME_FIELD[status]] = at or timezone.now()
    if external_id:
        target = Q(external_id=external_id)
    elif message_id is not None:
        target = Q(pk=message_id, direction=Direction.OUT)
    else:
        target = None
    with transaction.atomic():
        # The case changes with the status, in this transaction: its thread and case
        # are locked first (the project's lock order: thread, case, then the message).
        case = _case_lock(channel=channel, message_id=message_id, target=target)
        if message_id is not None and _message_reconcile(
            channel=channel, message_id=message_id, external_id=external_id, values=values, case=case
        ):
            return True
        if target is None:
            return False
        messages = Message.objects.filter(target, channel=channel)
        updated = messages.filter(status__in=allowed_from).update(**values)
        if updated:
            message = messages.get()
            _case_follow(case=case, message=message)
            signals.message_event_emit("message.status_changed", message, channel=channel)
            transaction.on_commit(lambda: realtime.publish_message_updated(message))
    return bool(updated)


def _case_lock(*, channel, message_id: int | None, target: Q | None):
    """The case a status callback may change, locked (thread first); None for a bot's message."""
    candidates = []
    if message_id is not None:
        candidates.append(Q(pk=message_id, direction=Direction.OUT))
    if target is not None:
        candidates.append(target)
    for q in candidates:
        message = (
            Message.objects.filter(q, channel=channel)
            .only("pk", "thread_id", "case_id", "author", "direction", "kind")
            .first()
        )
        if message is not None:
            return case_lock_for_message(message=message)
    return None


def _case_follow(*, case, message: Message) -> None:
    """A reply the provider accepted is a response; one that failed for good is withdrawn."""
    if case is None or message.case_id != case.pk:
        return
    if message.status == DeliveryStatus.FAILED:
        case_response_withdraw(case=case, message=message)
    else:
        case_response_record(case=case, message=message)


def _message_reconcile(*, channel, message_id: int, external_id: str, values: dict, case=None) -> bool:
    """A callback names a message of ours that has no outcome yet: the provider's word is the outcome.

    Only for a send in flight or interrupted (or queued again after one: the
    provider has it, the resend must not go out). Anything else follows the
    external id like every callback.
    """
    message = (
        Message.objects.select_for_update()
        .filter(pk=message_id, channel=channel, direction=Direction.OUT)
        .first()
    )
    if message is None or values["status"] == DeliveryStatus.QUEUED:
        return False
    undecided = message.status == DeliveryStatus.UNKNOWN or (
        message.status == DeliveryStatus.QUEUED
        and (message.send_claimed_at is not None or values["status"] != DeliveryStatus.FAILED)
    )
    if not undecided:
        return False
    values = {**values, "send_claimed_at": None, "next_attempt_at": None}
    if values["status"] != DeliveryStatus.FAILED:
        values["error"] = ""
        values.setdefault("sent_at", values.get("delivered_at") or values.get("read_at") or timezone.now())
    if external_id and not message.external_id:
        values["external_id"] = external_id
        message_echo_fold(
            channel_id=channel.pk, external_id=external_id, message_id=message.pk, values=values
        )
    Message.objects.filter(pk=message.pk).update(**values)
    outcome = (
        DeliveryAttempt.Outcome.FAILED
        if values["status"] == DeliveryStatus.FAILED
        else DeliveryAttempt.Outcome.SENT
    )
    # A claim still waiting in a batch is settled too: its turn then finds it taken
    # and never sends what the provider already has (conversations/batches.py).
    DeliveryAttempt.objects.filter(
        message=message,
        outcome__in=[
            DeliveryAttempt.Outcome.PENDING,
            DeliveryAttempt.Outcome.UNKNOWN,
            DeliveryAttempt.Outcome.WAITING,
        ],
    ).update(
        outcome=outcome,
        finished_at=timezone.now(),
        error=gettext("Outcome reported by the provider's status callback."),
    )
    for field, value in values.items():
        setattr(message, field, value)
    _case_follow(case=case, message=message)
    signals.message_event_emit("message.status_changed", message, channel=channel)
    transaction.on_commit(lambda: realtime.publish_message_updated(message))
    return True


def message_status_watermark(*, channel, recipient: Sender, status: str, watermark: datetime) -> int:
    """A receipt that covers everything sent to one person up to a time (Messenger)."""
    from customers.identity import identity_normalize

    if status not in (DeliveryStatus.DELIVERED, DeliveryStatus.READ):
        raise ValidationError(f"A watermark receipt cannot mean '{status}'.")
    address = identity_normalize(recipient.kind, recipient.address)
    allowed_from = [s for s, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[status]]
    with transaction.atomic():
        messages = list(
            Message.objects.filter(
                channel=channel,
                direction=Direction.OUT,
                identity__kind=recipient.kind,
                identity__address=address,
                status__in=allowed_from,
                created_at__lte=watermark,
            )
            # A watermark only covers what reached the provider: never a send still
            # queued, nor one a crash cut short ("may have been sent").
            .exclude(status__in=[DeliveryStatus.QUEUED, DeliveryStatus.UNKNOWN])
            # Each receipt's push goes to its case's viewers: the cases come along,
            # not one query per message after commit.
            .select_related("case")
        )
        if not messages:
            return 0
        Message.objects.filter(pk__in=[m.pk for m in messages]).update(
            status=status, **{_STATUS_TIME_FIELD[status]: watermark}
        )
        for message in messages:
            message.status = status
            setattr(message, _STATUS_TIME_FIELD[status], watermark)
            signals.message_event_emit("message.status_changed", message, channel=channel)
            transaction.on_commit(lambda m=message: realtime.publish_message_updated(m))
    return len(messages)


def message_update(
    *,
    channel,
    external_id: str,
    text: str | None = None,
    kind: str | None = None,
    meta: dict | None = None,
    attachments: list[dict] | None = None,
    at: datetime | None = None,
) -> Message | None:
    """Later news about a message we have: edits keep the old text, meta is merged."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(channel=channel, external_id=external_id).first()
        if message is None:
            return None
        merged = {**message.meta, **(meta or {})}
        if text is not None and text != message.body:
            merged["edits"] = [
                *message.meta.get("edits", []),
                {"text": message.body, "until": (at or timezone.now()).isoformat()},
            ]
            message.body = text
        if kind:
            message.kind = kind
        if attachments:
            message.attachments = [*message.attachments, *attachments]
        message.meta = merged
        message.save(update_fields=["body", "kind", "meta", "attachments"])
        transaction.on_commit(lambda: realtime.publish_message_updated(message))
    return message


def message_echo_fold(*, channel_id: int, external_id: str, message_id: int, values: dict) -> None:
    """The provider's echo of this very send can arrive before the send returns.

    It was recorded as an echo under the provider's id; it is this message, so it
    gives way (keeping any receipt it already got) instead of making a duplicate.
    """
    with connection.cursor() as cursor:
        # Almost never there: asked in a statement written once, the ORM only when it is.
        cursor.execute(
            f"SELECT 1 FROM {Message._meta.db_table} WHERE channel_id = %s AND external_id = %s AND id <> %s",  # noqa: S608
            [channel_id, external_id, message_id],
        )
        if cursor.fetchone() is None:
            return
    echo = (
        Message.objects.select_for_update()
        .filter(channel_id=channel_id, external_id=external_id)
        .exclude(pk=message_id)
        .first()
    )
    if echo is None or not echo.meta.get("echo"):
        return
    if DELIVERY_RANK.get(echo.status, 0) > DELIVERY_RANK[DeliveryStatus.SENT]:
        values["status"] = echo.status
        for stamp in ("delivered_at", "read_at"):
            if getattr(echo, stamp, None):
                values[stamp] = getattr(echo, stamp)
    echo_id, case_id = echo.pk, echo.case_id
    echo.delete()
    transaction.on_commit(
        lambda: realtime.publish("message.deleted", {"id": echo_id}, case_id=case_id, everyone=True)
    )
