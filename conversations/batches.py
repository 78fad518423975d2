"""Sends in batches: one task claims up to N due replies in one statement and sends them in turn.

Celery's cost per task and the ORM's per-statement work are paid once per
batch instead of once per send (bench/outbound.py). What stays per message:
the row exists before any task; its attempt is recorded; its outcome is
committed in a transaction of its own (`delivery.message_send_claimed`), so a
provider's error, an adapter's crash or a retry's backoff is that message's
only. Each message keeps its own task as the trigger: a task whose batch
another worker already took finds nothing to claim and ends.

Crash safety: the first message of a batch is claimed "in flight" (attempt
pending), the others "waiting" (attempt waiting). Each is marked pending in
one statement just before its network call. A worker killed mid-batch leaves
its in-flight send as "may have been sent" (as before batches) and its
waiting ones claimable again: `claims_release` gives them back, at that
node's restart or after the claim timeout.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations.delivery import DeliveryOutcome, message_deliver, message_send_claimed
from conversations.models import DeliveryAttempt, DeliveryStatus, Direction, Message
from conversations.services import _conf

logger = logging.getLogger(__name__)

PENDING, WAITING = DeliveryAttempt.Outcome.PENDING, DeliveryAttempt.Outcome.WAITING

# Replies wake the senders instead of each publishing a task of its own (a Celery
# publish was ≈40% of a reply's CPU, bench/outbound.py --producer-cpu). A reply
# sets this key and publishes a task only if the key was not set; a task clears
# it BEFORE its first claim and claims until nothing is due. So a reply whose
# SET found the key (a task published, not started) is committed before that
# task's claim begins and is taken by it; a reply after the clear sets the key
# itself and publishes. The expiry bounds a lost task (a broker that dropped
# it): the next reply after it publishes again, and the beat's redrive finds
# whatever stayed queued, as it does when the broker was down.
WAKE_KEY = "helpdesk:outbound:wake"
WAKE_SECONDS = 2
_redis_client = None


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def sends_wake(*, message_id: int) -> None:
    """After a reply committed: a send task, unless one is published and not started yet."""
    from conversations.tasks import message_deliver

    if not settings.REDIS_URL or settings.CELERY_TASK_ALWAYS_EAGER or connection.vendor != "postgresql":
        message_deliver.delay(message_id)  # the demo: no broker to share, one message a task
        return
    if _redis().set(WAKE_KEY, message_id, nx=True, ex=WAKE_SECONDS):
        message_deliver.delay(message_id)


def sends_wake_clear() -> None:
    """A send task starts: replies committed from now on publish again (see WAKE_KEY)."""
    if settings.REDIS_URL and not settings.CELERY_TASK_ALWAYS_EAGER:
        _redis().delete(WAKE_KEY)


def messages_deliver_due(*, message_id: int, worker: str = "", limit: int | None = None) -> dict:
    """This message, if still due, and up to `limit - 1` other due ones: sent once each, oldest first.

    Returns {message id: DeliveryOutcome} for what this call claimed. Off
    PostgreSQL (the SQLite demo) one message at a time, as before batches.
    """
    limit = limit or _conf("OUTBOUND_BATCH_SIZE")
    if connection.vendor != "postgresql" or limit <= 1:
        return {message_id: message_deliver(message_id=message_id, worker=worker)}
    now = timezone.now()
    claimed = _claim_due(message_id=message_id, now=now, worker=worker[:200], limit=limit)
    if not claimed:
        return {message_id: DeliveryOutcome("skipped")}
    # Read after the claim committed, as a single send reads its message.
    messages = {
        m.pk: m
        for m in Message.objects.select_related("channel", "identity", "thread").filter(
            pk__in=[mid for mid, _, _ in claimed]
        )
    }
    _sends_prepare(list(messages.values()))
    deadline = time.monotonic() + _conf("OUTBOUND_BATCH_SECONDS")
    outcomes = {}
    for index, (mid, attempt_id, outcome) in enumerate(claimed):
        message = messages.get(mid)
        if message is None:  # erased since the claim (its attempt went with it)
            continue
        if outcome == WAITING:
            if time.monotonic() > deadline:
                # A slow provider: the rest go back to the queue rather than wait
                # until a claim timeout shows them as "may have been sent".
                claims_release(attempt_ids=[a for _, a, _ in claimed[index:]])
                break
            if not _attempt_start(attempt_id=attempt_id):
                continue  # given back meanwhile (claims_release): another task sends it
        try:
            outcomes[mid] = message_send_claimed(message=message, attempt_id=attempt_id, claimed_at=now)
        except Exception:  # noqa: BLE001 - the rest of the batch still goes out
            # Its outcome could not be recorded (the database): it stays claimed,
            # and the claim timeout shows it as "may have been sent", as a lone send's would.
            logger.exception("Could not record the outcome of message %s", mid)
    return outcomes


def _claim_due(*, message_id: int, now: datetime, worker: str, limit: int) -> list[tuple[int, int, str]]:
    """Claim the task's message and the oldest other due ones, with their attempts: one statement.

    [(message id, attempt id, outcome)] oldest first; the first is pending (sent
    at once), the others waiting. SKIP LOCKED everywhere: a message another
    worker is claiming right now is left to it, and no claim waits on another
    (two claims each holding what the other wants cannot deadlock). A row
    claimed and committed after this statement began is re-read under its
    lock and no longer matches (`send_claimed_at`), so it is never claimed
    twice (tests/conversations/test_batches.py).
    """
    due = now + timedelta(seconds=1)
    messages, attempts = Message._meta.db_table, DeliveryAttempt._meta.db_table
    claimable = """direction = %(out)s AND status = %(queued)s AND send_claimed_at IS NULL
              AND (next_attempt_at IS NULL OR next_attempt_at <= %(due)s)"""
    sql = f"""
        WITH own AS (
            SELECT id FROM {messages} WHERE id = %(id)s AND {claimable}
            FOR UPDATE SKIP LOCKED
        ), others AS (
            SELECT id FROM {messages} WHERE id <> %(id)s AND {claimable}
            ORDER BY id LIMIT %(more)s
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE {messages} SET send_claimed_at = %(now)s, attempts = attempts + 1
            WHERE id IN (SELECT id FROM own UNION ALL SELECT id FROM others)
            RETURNING id
        )
        INSERT INTO {attempts} (message_id, number, started_at, outcome, error, worker)
        SELECT claimed.id,
               COALESCE((SELECT MAX(a.number) FROM {attempts} a WHERE a.message_id = claimed.id), 0) + 1,
               %(now)s,
               CASE WHEN claimed.id = (SELECT MIN(id) FROM claimed) THEN %(pending)s ELSE %(waiting)s END,
               '', %(worker)s
        FROM claimed
        RETURNING message_id, id, outcome
    """  # noqa: S608 - table names from the models, every value a parameter
    params = {
        "id": message_id,
        "out": Direction.OUT,
        "queued": DeliveryStatus.QUEUED,
        "due": due,
        "more": limit - 1 if message_id else limit,  # a task's later claims have no message of their own
        "now": now,
        "pending": PENDING,
        "waiting": WAITING,
        "worker": worker,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(cursor.fetchall())


def _attempt_start(*, attempt_id: int) -> bool:
    """A waiting claim's turn: its attempt becomes the send in flight, unless it was given back."""
    table = DeliveryAttempt._meta.db_table
    sql = f"UPDATE {table} SET outcome = %s, started_at = %s WHERE id = %s AND outcome = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [PENDING, timezone.now(), attempt_id, WAITING])
        return cursor.rowcount == 1


def _sends_prepare(messages: list[Message]) -> None:
    by_channel = defaultdict(list)
    for message in messages:
        by_channel[message.channel_id].append(message)
    for group in by_channel.values():
        channel = group[0].channel
        try:
            adapter_for(channel.kind).sends_prepare(channel, group)
        except UnsupportedChannel:
            continue  # each send fails on its own, in plain words
        except Exception:  # noqa: BLE001 - a prefetch is an optimisation: each send reads for itself
            logger.exception("Could not prepare sends on channel %s", channel.pk)


def claims_release(*, attempt_ids) -> list[int]:
    """Waiting claims given back: their attempt never started, so it is not one; the message is due again.

    Only attempts still waiting (a started one is a send in flight, never
    given back). Each released message is enqueued again after commit.
    """
    from conversations.tasks import message_deliver as message_deliver_task

    attempt_ids = list(attempt_ids)
    if not attempt_ids or connection.vendor != "postgresql":
        return []
    messages, attempts = Message._meta.db_table, DeliveryAttempt._meta.db_table
    sql = f"""
        WITH gone AS (
            DELETE FROM {attempts} WHERE id = ANY(%s) AND outcome = %s RETURNING message_id
        )
        UPDATE {messages} m SET send_claimed_at = NULL, attempts = GREATEST(m.attempts - 1, 0)
        FROM gone WHERE m.id = gone.message_id AND m.status = %s
        RETURNING m.id
    """  # noqa: S608 - table names from the models, every value a parameter
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, [attempt_ids, WAITING, DeliveryStatus.QUEUED])
            released = sorted(row[0] for row in cursor.fetchall())
        for pk in released:
            transaction.on_commit(lambda pk=pk: message_deliver_task.delay(pk))
    return released


def claims_release_stale(*, worker: str = "", before: datetime) -> list[int]:
    """Waiting claims a dead worker left: that node's before its restart, anyone's past the claim timeout."""
    waiting = DeliveryAttempt.objects.filter(outcome=WAITING, started_at__lt=before)
    if worker:
        waiting = waiting.filter(worker=worker[:200])
    return claims_release(attempt_ids=list(waiting.values_list("pk", flat=True)[:1000]))
