"""Outbound delivery: a queued message is claimed and handed to its provider at most once.

Every try is a DeliveryAttempt. A send a crash cut short is "unknown" (may
have been sent) until a status callback naming our message settles it
(conversations/statuses.py). Batches of sends: conversations/batches.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from channels_adapters.base import (
    OutboundRefused,
    PermanentSendError,
    TransientSendError,
)
from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations import realtime, signals
from conversations.models import (
    DeliveryAttempt,
    DeliveryStatus,
    Direction,
    Message,
)
from conversations.services import (
    _conf,
    case_lock_for_message,
    case_response_record,
)
from conversations.statuses import message_echo_fold

logger = logging.getLogger(__name__)


# Outbound delivery ---------------------------------------------------------


@dataclass
class DeliveryOutcome:
    outcome: str  # sent, retry, failed, skipped
    retry_in: float | None = None


def _backoff(attempt: int, retry_after: float | None) -> float:
    delay = _conf("OUTBOUND_BACKOFF_SECONDS") * (2 ** (attempt - 1))
    if retry_after:
        delay = max(delay, retry_after)
    return min(delay, _conf("OUTBOUND_BACKOFF_MAX_SECONDS"))


def message_deliver(*, message_id: int, worker: str = "") -> DeliveryOutcome:
    """Hand one queued message to its provider, at most once.

    Check-and-mark under a row lock: the claim is committed before the network
    call, so a second task for the same message (a redrive, a duplicate
    delivery from the broker) finds it claimed and does nothing. `worker` (the
    Celery node) is kept on the attempt, so that node's restart knows which
    sends it cut short.
    """
    now = timezone.now()
    attempt_id = _claim(message_id=message_id, now=now, worker=worker[:200])
    if attempt_id is None:
        return DeliveryOutcome("skipped")
    # Read after the claim committed: what a status callback changes from now on
    # is settled by the outcome's conditional update below.
    message = Message.objects.select_related("channel", "identity", "thread").filter(pk=message_id).first()
    if message is None:  # erased (privacy) since the claim: nothing to send any more
        return DeliveryOutcome("skipped")
    return message_send_claimed(message=message, attempt_id=attempt_id, claimed_at=now)


def message_send_claimed(*, message: Message, attempt_id: int, claimed_at: datetime) -> DeliveryOutcome:
    """The network call for a message this worker claimed, and its outcome in a transaction of its own.

    A batch (conversations/batches.py) calls this once per message: a provider's
    error, a crash in an adapter or a lost race with a status callback stay with
    that message.
    """
    message_id = message.pk
    started = timezone.now()
    retry_in = None
    external_id = None
    try:
        adapter = adapter_for(message.channel.kind)
        if message.identity is None:
            raise PermanentSendError(gettext("The message has no recipient address."))
        result = adapter.send(message.channel, message, message.identity)
        outcome, reason, external_id = "sent", "", result.external_id
    except UnsupportedChannel as exc:
        outcome, reason = "failed", str(exc)
    except PermanentSendError as exc:
        outcome, reason = "failed", exc.reason
    except OutboundRefused as exc:
        outcome, reason = "failed", str(exc)
    except TransientSendError as exc:
        outcome, reason = "retry", exc.reason
        retry_in = _backoff(message.attempts, exc.retry_after)
    except Exception as exc:  # noqa: BLE001 - an adapter bug must not lose the message
        logger.exception("Unexpected error sending message %s", message_id)
        outcome, reason = "retry", gettext("Unexpected error while sending: %(error)s") % {"error": exc}
        retry_in = _backoff(message.attempts, None)
    if outcome == "retry" and message.attempts >= _conf("OUTBOUND_MAX_ATTEMPTS"):
        outcome = "failed"
        reason = gettext("Gave up after %(attempts)s attempts. Last error: %(error)s") % {
            "attempts": message.attempts,
            "error": reason,
        }
        retry_in = None

    finished = timezone.now()
    values = {"send_claimed_at": None}
    if outcome == "sent":
        values.update(status=DeliveryStatus.SENT, external_id=external_id, sent_at=finished, error="")
    elif outcome == "failed":
        values.update(status=DeliveryStatus.FAILED, error=reason)
    else:
        values.update(
            error=gettext("Retrying (attempt %(attempt)s failed): %(error)s")
            % {"attempt": message.attempts, "error": reason},
            next_attempt_at=finished + timedelta(seconds=retry_in),
        )
    with transaction.atomic():
        # A reply the provider accepted is a response, in the status change's transaction:
        # thread, then case, then the message (the project's lock order).
        case = case_lock_for_message(message=message) if outcome == "sent" else None
        if outcome == "sent" and external_id and _echoes_sends(message.channel):
            message_echo_fold(
                channel_id=message.channel_id, external_id=external_id, message_id=message_id, values=values
            )
        # Still ours: the claim, or an "outcome unknown" given up on this very
        # attempt (a send slower than the claim timeout) that the real answer settles.
        # A status callback that settled it already wins: it may be past "sent".
        settled = _outcome_write(
            message_id=message_id,
            claimed_at=claimed_at,
            attempts=message.attempts,
            values=values,
            attempt_id=attempt_id,
            attempt_values={
                "finished_at": finished,
                "outcome": {"sent": "sent", "failed": "failed", "retry": "retry"}[outcome],
                "error": reason,
                "duration_ms": int((finished - started).total_seconds() * 1000),
            },
        )
        for field, value in values.items():
            setattr(message, field, value)
        if case is not None:
            message.case = case  # the push below finds its viewers without reading the case again
        if settled and outcome == "sent":
            case_response_record(case=case, message=message)
        if settled and outcome != "retry":
            signals.message_event_emit("message.status_changed", message)
        transaction.on_commit(lambda: realtime.publish_message_updated(message))
    return DeliveryOutcome(outcome, retry_in)


def _outcome_write(
    *, message_id: int, claimed_at, attempts: int, values: dict, attempt_id: int, attempt_values: dict
) -> bool:
    """The message's outcome, if the send is still ours, and its attempt's: one statement; whether it settled.

    Written out rather than through the ORM: every send runs it, and compiling
    two updates was a good part of a send's CPU (bench/outbound.py, py-spy).
    """

    def assignments(model, changes):
        fields = [model._meta.get_field(name) for name in changes]
        sql = ", ".join(f'"{field.column}" = %s' for field in fields)
        return sql, [field.get_db_prep_save(changes[field.name], connection) for field in fields]

    message_set, message_params = assignments(Message, values)
    attempt_set, attempt_params = assignments(DeliveryAttempt, attempt_values)
    messages, attempts_table = Message._meta.db_table, DeliveryAttempt._meta.db_table
    ours = "id = %s AND (send_claimed_at = %s OR (status = %s AND attempts = %s))"
    ours_params = [message_id, claimed_at, DeliveryStatus.UNKNOWN, attempts]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""WITH settled AS (UPDATE {messages} SET {message_set} WHERE {ours} RETURNING id)
                UPDATE {attempts_table} SET {attempt_set} WHERE id = %s
                RETURNING (SELECT COUNT(*) FROM settled)""",  # noqa: S608 - names from the models
                [*message_params, *ours_params, *attempt_params, attempt_id],
            )
            row = cursor.fetchone()
            return bool(row and row[0])
        cursor.execute(f"UPDATE {messages} SET {message_set} WHERE {ours}", [*message_params, *ours_params])  # noqa: S608
        settled = cursor.rowcount
        cursor.execute(
            f"UPDATE {attempts_table} SET {attempt_set} WHERE id = %s", [*attempt_params, attempt_id]
        )  # noqa: S608
    return bool(settled)


def _claim(*, message_id: int, now: datetime, worker: str) -> int | None:
    """Claim a queued message and open its attempt, committed together; the attempt's id, or None.

    Claimable: our queued message, not claimed, not waiting for its backoff. On
    PostgreSQL one statement (an UPDATE and the INSERT it feeds), its conditions
    on the updated row itself: a second claim of the same message (a redrive, a
    broker's duplicate) waits for the row lock, then finds it claimed and does
    nothing. Attempt numbers go on across an agent's Retry (which starts
    `attempts` again).
    """
    due = now + timedelta(seconds=1)
    if connection.vendor != "postgresql":
        with transaction.atomic():
            ready = (
                Message.objects.select_for_update()
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=due), pk=message_id)
                .filter(direction=Direction.OUT, status=DeliveryStatus.QUEUED, send_claimed_at__isnull=True)
            )
            if ready.values_list("pk", flat=True).first() is None:
                return None
            Message.objects.filter(pk=message_id).update(send_claimed_at=now, attempts=F("attempts") + 1)
            highest = DeliveryAttempt.objects.filter(message_id=message_id).aggregate(n=Max("number"))["n"]
            attempt = DeliveryAttempt.objects.create(
                message_id=message_id, number=(highest or 0) + 1, started_at=now, worker=worker
            )
            return attempt.pk
    messages, attempts = Message._meta.db_table, DeliveryAttempt._meta.db_table
    sql = f"""
        WITH claimed AS (
            UPDATE {messages} SET send_claimed_at = %s, attempts = attempts + 1
            WHERE id = %s AND direction = %s AND status = %s AND send_claimed_at IS NULL
              AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
            RETURNING id
        )
        INSERT INTO {attempts} (message_id, number, started_at, outcome, error, worker)
        SELECT claimed.id,
               COALESCE((SELECT MAX(a.number) FROM {attempts} a WHERE a.message_id = claimed.id), 0) + 1,
               %s, %s, '', %s
        FROM claimed
        RETURNING id
    """  # noqa: S608 - table names from the models, every value a parameter
    params = [now, message_id, Direction.OUT, DeliveryStatus.QUEUED, due]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, now, DeliveryAttempt.Outcome.PENDING, worker])
        row = cursor.fetchone()
    return row[0] if row else None


def _echoes_sends(channel) -> bool:
    try:
        return adapter_for(channel.kind).echoes_sends
    except UnsupportedChannel:
        return True


def message_retry(*, message: Message, by=None, confirmed: bool = False) -> Message:
    """An agent retries a failed send: it goes back to the queue as a fresh delivery.

    A send whose outcome is unknown may be on the customer's phone already:
    it goes again only once the agent confirms. It keeps its id, so the
    provider's idempotency key (where it has one: the API channel) and our
    reference in callbacks are those of the first try, and a late callback of
    that try still settles it.
    """
    from conversations.tasks import message_deliver

    with transaction.atomic():
        current = (
            Message.objects.select_for_update()
            .filter(pk=message.pk, direction=Direction.OUT)
            .values_list("status", flat=True)
            .first()
        )
        if current not in (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN):
            raise ValidationError(gettext("Only a failed message can be retried."))
        if current == DeliveryStatus.UNKNOWN and not confirmed:
            raise ValidationError(
                gettext(
                    "This message may already have reached the customer. "
                    "Confirm that you want to send it again."
                )
            )
        Message.objects.filter(pk=message.pk).update(
            status=DeliveryStatus.QUEUED, error="", next_attempt_at=None, attempts=0, send_claimed_at=None
        )
        transaction.on_commit(lambda: message_deliver.delay(message.pk))
    message.refresh_from_db()
    return message


INTERRUPTED = gettext_lazy(
    "The send was interrupted and its outcome is unknown: the customer may have received it. "
    "Check with them before sending it again."
)


RESENT = gettext_lazy(
    "The send was interrupted; sending it again with the same idempotency key, which the receiver "
    "uses to drop a repeat."
)


def _messages_outcome_unknown(*, message_ids) -> tuple[list[int], list[int]]:
    """Claimed sends whose worker died: the provider may or may not have them. Never resent blindly.

    Where the receiver drops a repeat by our idempotency key (the channel says
    so), the send simply goes again; elsewhere the agent decides. Returns
    (unknown, resent).
    """
    from conversations.tasks import message_deliver

    now = timezone.now()
    with transaction.atomic():
        messages = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel", "case")
            .filter(pk__in=list(message_ids), status=DeliveryStatus.QUEUED, send_claimed_at__isnull=False)
        )
        if not messages:
            return [], []
        resend = [m for m in messages if _dedupes_resends(m.channel)]
        unknown = [m for m in messages if m not in resend]
        for group, status, reason in (
            (unknown, DeliveryStatus.UNKNOWN, str(INTERRUPTED)),
            (resend, DeliveryStatus.QUEUED, str(RESENT)),
        ):
            ids = [m.pk for m in group]
            if not ids:
                continue
            Message.objects.filter(pk__in=ids).update(
                status=status, send_claimed_at=None, next_attempt_at=None, error=reason
            )
            DeliveryAttempt.objects.filter(
                message_id__in=ids, outcome=DeliveryAttempt.Outcome.PENDING
            ).update(outcome=DeliveryAttempt.Outcome.UNKNOWN, finished_at=now, error=reason)
            for message in group:
                message.status, message.send_claimed_at, message.error = status, None, reason
                transaction.on_commit(lambda m=message: realtime.publish_message_updated(m))
                if status == DeliveryStatus.QUEUED:
                    transaction.on_commit(lambda pk=message.pk: message_deliver.delay(pk))
    return [m.pk for m in unknown], [m.pk for m in resend]


def _dedupes_resends(channel) -> bool:
    try:
        return adapter_for(channel.kind).dedupes_resends(channel)
    except UnsupportedChannel:
        return False


def outbound_redrive() -> dict:
    """Beat task body: re-enqueue messages left queued, report sends with no outcome."""
    from conversations import batches
    from conversations.tasks import message_deliver

    now = timezone.now()
    stuck_before = now - timedelta(seconds=_conf("OUTBOUND_STUCK_AFTER_SECONDS"))
    stuck = list(
        Message.objects.filter(
            direction=Direction.OUT,
            status=DeliveryStatus.QUEUED,
            send_claimed_at__isnull=True,
            created_at__lt=stuck_before,
        )
        .exclude(next_attempt_at__gte=stuck_before)
        .values_list("pk", flat=True)[:1000]
    )
    for pk in stuck:
        message_deliver.delay(pk)
    claim_timeout = now - timedelta(seconds=_conf("OUTBOUND_CLAIM_TIMEOUT_SECONDS"))
    # Claims that waited in a batch of a worker that died: never handed over, due again.
    released = batches.claims_release_stale(before=claim_timeout)
    # A claim this old outlived every client timeout: its worker died mid-send.
    lost = Message.objects.filter(
        status=DeliveryStatus.QUEUED,
        send_claimed_at__lt=claim_timeout,
    ).values_list("pk", flat=True)[:1000]
    unknown, resent = _messages_outcome_unknown(message_ids=lost)
    return {
        "requeued": len(stuck) + len(released),
        "interrupted": len(unknown),
        "resent": len(resent),
    }


def outbound_recover(*, worker: str, started_at: datetime | None = None) -> dict:
    """A worker node starts: settle what its previous run left, at once rather than at the next beat.

    Sends that node had claimed before this start were cut short (a node
    name runs once at a time): outcome unknown now, not after the claim
    timeout. Queued messages go back to the broker: the tasks a killed worker
    had reserved (its prefetch, its retries' countdowns) come back only after
    the broker's visibility timeout. A message still queued on the broker is
    enqueued twice; the claim sends it once.
    """
    from conversations import batches
    from conversations.tasks import message_deliver

    started_at = started_at or timezone.now()
    cut_short, released = [], []
    if worker:
        # Waiting in a batch when the node died: never handed over, due again (enqueued).
        released = batches.claims_release_stale(worker=worker, before=started_at)
        cut_short = DeliveryAttempt.objects.filter(
            worker=worker[:200], outcome=DeliveryAttempt.Outcome.PENDING, started_at__lt=started_at
        ).values_list("message_id", flat=True)[:1000]
    interrupted, resent = _messages_outcome_unknown(message_ids=cut_short)
    queued = list(
        Message.objects.filter(
            direction=Direction.OUT, status=DeliveryStatus.QUEUED, send_claimed_at__isnull=True
        )
        .exclude(pk__in=[*resent, *released])  # queued already
        .values_list("pk", "next_attempt_at")[:1000]
    )
    now = timezone.now()
    for pk, next_attempt_at in queued:
        if next_attempt_at and next_attempt_at > now:
            message_deliver.apply_async((pk,), eta=next_attempt_at)
        else:
            message_deliver.delay(pk)
    return {"requeued": len(queued) + len(released), "interrupted": len(interrupted), "resent": len(resent)}
