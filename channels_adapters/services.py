"""Inbound webhooks: store first, then normalize through the channel's adapter.

Every webhook of every kind ends in `inbound_events_process`, the one shared
path from a provider's payload to messages on threads.

Hand-off to the workers: the webhook's only job after the INSERT is one Redis
push of the event id on a pending list (a Celery task per webhook cost more
than the rest of the request). A drain task pops the list in batches; one is
queued when the list goes from empty to not empty, and one more per
`INBOUND_BATCH_SIZE` ids so that, where INBOUND_DRAINERS allows more than one,
several workers share a burst.

Crashes: a drainer holds its slot on a lease of a few seconds renewed by a
heartbeat thread, and its batch sits in the slot's in-flight list until it is
done, so after a kill -9 the next drain takes the slot within one lease and
puts the batch back first. A set next to the list keeps each id queued once,
however often it is re-driven. The database stays the source of truth: an
id Redis lost anyway leaves its event pending, and the beat re-drive pushes
it again and wakes a drainer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext

from channels_adapters.base import (
    Ignored,
    InboundMessage,
    MessageUpdate,
    ParseError,
    Rejected,
    StatusUpdate,
    data_clean,
    error_is_transient,
    error_reason,
    item_normalize,
    text_clean,
)
from channels_adapters.models import Channel, InboundEvent
from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations import realtime, signals
from helpdesk.fields import EncryptionKeyError

if TYPE_CHECKING:
    from redis.lock import Lock

logger = logging.getLogger(__name__)

# Headers worth keeping for a replay or an investigation; never cookies or auth.
_DROPPED_HEADERS = {"cookie", "authorization", "proxy-authorization"}
# Bearer secrets any provider or client may send; each adapter adds its own
# (Telegram's secret token). Kept as present-but-masked, for investigations.
_SECRET_HEADERS = {"x-api-key", "x-auth-token", "x-webhook-secret"}
MASKED = "[masked]"


def stored_headers(*, kind: str, headers) -> dict:
    """The request's headers as they may be stored: no cookies or auth, secrets masked."""
    secret = _SECRET_HEADERS | {h.lower() for h in adapter_for(kind).secret_headers}
    return {
        k: (MASKED if k.lower() in secret else v)
        for k, v in headers.items()
        if k.lower() not in _DROPPED_HEADERS
    }


PENDING_KEY = "helpdesk:inbound:pending"
# Every id on the pending list or in a drainer's hands, once: a re-drive or a
# repeat enqueue of an id already waiting adds nothing (the list once grew to
# 4,837 ids for 3,037 pending events).
QUEUED_KEY = "helpdesk:inbound:queued"
# The batch a drainer slot is working on. Popping moves ids here instead of
# dropping them, so whoever takes a dead drainer's slot puts its batch back
# at the head of the list at once, instead of beat finding it minutes later.
INFLIGHT_KEY = "helpdesk:inbound:inflight:{}"
DRAINER_LOCK = "helpdesk:inbound:drainer:{}"
# Set by a drain that found every slot taken while ids wait: at most one
# "look again" task per lease, so a dead holder's slot is taken over when its
# lease runs out even if no new webhook arrives.
RECHECK_KEY = "helpdesk:inbound:recheck"
# A drainer with nothing to do waits a little on the doorbell (a one-element
# list every push rings) instead of leaving: the next webhook's id is popped at
# once, not after a Celery task's broker round trip (11-12 ms of a 25 ms floor
# from the provider's POST to the agent's screen). A slot's LISTENING key, set
# while it waits (on a short expiry, for a drainer killed waiting), tells the
# webhook that no task is needed.
DOORBELL_KEY = "helpdesk:inbound:doorbell"
LISTENING_KEY = "helpdesk:inbound:listening:{}"
_redis_client = None
_scripts: dict = {}

# SADD tells which ids are new; only those are pushed.
_ENQUEUE_LUA = """
local added = 0
for _, id in ipairs(ARGV) do
  if redis.call('SADD', KEYS[2], id) == 1 then
    redis.call('RPUSH', KEYS[1], id)
    added = added + 1
  end
end
if added > 0 then
  redis.call('RPUSH', KEYS[3], 1)
  redis.call('LTRIM', KEYS[3], 0, 0)
end
local listening = 0
if #KEYS > 3 then listening = redis.call('EXISTS', unpack(KEYS, 4)) end
return {added, redis.call('LLEN', KEYS[1]), listening}
"""
# Fenced by the lock's token: a drainer that lost its slot (paused past its
# lease) can neither take a batch nor acknowledge the new holder's.
_POP_LUA = """
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return false end
local ids = redis.call('LPOP', KEYS[1], ARGV[1])
if not ids then return {} end
redis.call('RPUSH', KEYS[2], unpack(ids))
return ids
"""
_ACK_LUA = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
if #ids > 0 then redis.call('SREM', KEYS[2], unpack(ids)) end
redis.call('DEL', KEYS[1])
return #ids
"""
# Back to the head of the list, in their order; they stay in the queued set.
# ARGV[1] is the caller's lock token, or '' for "only if nobody holds the slot".
_RECOVER_LUA = """
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return -1 end
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #ids, 1, -1 do redis.call('LPUSH', KEYS[2], ids[i]) end
redis.call('DEL', KEYS[1])
return #ids
"""


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def _script(source: str):
    if source not in _scripts:
        _scripts[source] = _redis().register_script(source)
    return _scripts[source]


def _batch_size() -> int:
    return settings.HELPDESK["INBOUND_BATCH_SIZE"]


def inbound_events_enqueue(*, event_ids: list[int], wake: bool = False) -> None:
    """Hand stored events to the workers. Call after commit: a worker must find the rows.

    Ids already waiting (or being processed) are not pushed again. `wake`
    queues a drain even if the list was not empty (the beat re-drive: ids left
    on the list by a drainer that died must not wait for the next burst).
    """
    from channels_adapters.tasks import inbound_event_process_task, inbound_events_drain_task

    if not settings.REDIS_URL or settings.CELERY_TASK_ALWAYS_EAGER:
        # Embedded default: no Redis, tasks run inline, one at a time.
        for pk in event_ids:
            inbound_event_process_task.delay(pk)
        return
    if not event_ids:
        if wake and _redis().llen(PENDING_KEY):
            inbound_events_drain_task.delay()
        return
    listening_keys = [LISTENING_KEY.format(n) for n in range(settings.HELPDESK["INBOUND_DRAINERS"])]
    added, length, listening = _script(_ENQUEUE_LUA)(
        keys=[PENDING_KEY, QUEUED_KEY, DOORBELL_KEY, *listening_keys], args=event_ids
    )
    before, size = length - added, _batch_size()
    # The list going from empty to not empty needs a drain, unless one waits on
    # the doorbell. Ids already waiting while one "listens" mean that drainer died
    # waiting: a drain task takes its slot over. Crossing a batch boundary queues
    # one for a second slot, where INBOUND_DRAINERS allows.
    if wake or (added and ((before == 0) != bool(listening) or before // size != length // size)):
        inbound_events_drain_task.delay()


def inbound_events_enqueue_on_commit(event_ids: list[int]) -> None:
    """For a writer that stores events inside its transaction (the webhook, the IMAP poll)."""
    # robust: Redis away must not turn an accepted webhook into a 500 (the
    # provider would send it again); the stored event is re-driven by beat.
    transaction.on_commit(lambda: inbound_events_enqueue(event_ids=event_ids), robust=True)


def inbound_event_store(*, channel: Channel, request: HttpRequest) -> InboundEvent:
    """Keep the raw request, then hand it to the workers after commit."""
    # The body is kept as bytes, exactly as signed; what goes in text and jsonb
    # columns is cleaned so that no request the provider signed can fail the INSERT.
    event = InboundEvent.objects.create(
        channel=channel,
        body=request.body,
        headers=data_clean(stored_headers(kind=channel.kind, headers=request.headers)),
        content_type=text_clean(request.content_type or "")[:200],
        query_string=text_clean(request.META.get("QUERY_STRING", "")),
    )
    inbound_events_enqueue_on_commit([event.pk])
    return event


@dataclass
class _Slot:
    """A drainer slot, held on a short lease that a heartbeat thread renews while this process lives.

    kill -9 stops the heartbeat with everything else, so the slot frees itself
    within one lease instead of the minute-plus a fixed timeout had to allow
    for the longest batch.
    """

    number: int
    lock: Lock
    stop: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    heartbeat: threading.Thread | None = None

    @property
    def token(self) -> bytes:
        return self.lock.local.token

    @property
    def keys(self) -> tuple[str, str]:
        return INFLIGHT_KEY.format(self.number), DRAINER_LOCK.format(self.number)


def _lease_seconds() -> float:
    return settings.HELPDESK["INBOUND_DRAIN_LEASE_SECONDS"]


def _drainer_lock_take() -> _Slot | None:
    """One of INBOUND_DRAINERS slots, or None when every slot is at work.

    The batch a dead holder left in the slot goes back to the head of the list.
    """
    for number in range(settings.HELPDESK["INBOUND_DRAINERS"]):
        # thread_local off: the heartbeat thread renews with the token this thread took.
        lock = _redis().lock(DRAINER_LOCK.format(number), timeout=_lease_seconds(), thread_local=False)
        if not lock.acquire(blocking=False):
            continue
        slot = _Slot(number=number, lock=lock)
        inflight, lock_key = slot.keys
        try:
            recovered = _script(_RECOVER_LUA)(keys=[inflight, PENDING_KEY, lock_key], args=[slot.token])
        except Exception:
            # No heartbeat runs yet: give the slot back now rather than hold it
            # renewed for as long as this process lives.
            _drainer_lock_release(slot)
            raise
        if recovered and recovered > 0:
            logger.warning("Drainer slot %s taken over: %s ids of a dead drainer back", number, recovered)
        slot.heartbeat = threading.Thread(
            target=_drainer_lock_renew, args=(slot,), name=f"inbound-drainer-{number}", daemon=True
        )
        slot.heartbeat.start()
        return slot
    return None


def _drainer_lock_renew(slot: _Slot) -> None:
    """Heartbeat: the lease starts again every third of itself until the drain ends."""
    from redis.exceptions import LockError, RedisError

    every = _lease_seconds() / 3
    while not slot.stop.wait(every):
        try:
            slot.lock.reacquire()
        except LockError:
            # Paused past the lease (a stalled host): someone may hold the slot
            # now; the fenced pop and ack stop this drainer at its next batch.
            logger.warning("Inbound drainer slot %s lost its lease", slot.number)
            slot.lost.set()
            return
        except RedisError:
            logger.warning("Could not renew inbound drainer slot %s; trying again", slot.number)


def _drainer_lock_release(slot: _Slot) -> None:
    from redis.exceptions import LockError

    slot.stop.set()
    if slot.heartbeat is not None:
        slot.heartbeat.join(timeout=5)
    try:
        slot.lock.release()
    except LockError:
        logger.warning("An inbound drainer outlived its lock; another may have run alongside it")


def _doorbell_wait(slot: _Slot, seconds: float) -> None:
    """Wait until a push rings (or `seconds` pass), telling pushers meanwhile that a drainer listens."""
    client, key = _redis(), LISTENING_KEY.format(slot.number)
    # The expiry outlives the wait a little, for a drainer killed while waiting.
    client.set(key, 1, px=int((seconds + 0.5) * 1000))
    try:
        client.blpop([DOORBELL_KEY], timeout=seconds)
    finally:
        # Busy from here on: a push onto the empty list must queue a drain again.
        client.delete(key)


def _drain_recheck_later() -> None:
    """Every slot is taken and work waits: look again once a dead holder's lease would be over."""
    from channels_adapters.tasks import inbound_events_drain_task

    client = _redis()
    inflight = [INFLIGHT_KEY.format(n) for n in range(settings.HELPDESK["INBOUND_DRAINERS"])]
    if not (client.llen(PENDING_KEY) or client.exists(*inflight)):
        return
    lease = _lease_seconds()
    if client.set(RECHECK_KEY, 1, nx=True, px=int(lease * 1000)):
        inbound_events_drain_task.apply_async(countdown=lease)


def inbound_events_drain(*, max_seconds: float | None = None) -> int:
    """Drain task body: process pending ids in batches until the list is empty.

    At most INBOUND_DRAINERS drains run at once (default 1): on a small machine
    the other worker processes stay free for outbound sends and the web tier
    keeps its CPU, and with one drainer messages land in arrival order. A
    drain task finding every slot taken leaves (the running drainer empties
    the list) after making sure someone looks again within a lease. Time-boxed
    so a long burst does not hold a worker process; what is left gets another
    drain task. Returns events processed.
    """
    from channels_adapters.tasks import inbound_events_drain_task

    conf = settings.HELPDESK
    max_seconds = conf["INBOUND_DRAIN_SECONDS"] if max_seconds is None else max_seconds
    idle = conf["INBOUND_DRAIN_IDLE_SECONDS"]
    deadline = time.monotonic() + max_seconds
    pop, ack = _script(_POP_LUA), _script(_ACK_LUA)
    done = 0
    while True:
        slot = _drainer_lock_take()
        if slot is None:
            _drain_recheck_later()
            return done
        inflight, lock_key = slot.keys
        handover = False
        last_work = time.monotonic()
        try:
            while not slot.lost.is_set():
                ids = pop(keys=[PENDING_KEY, inflight, lock_key], args=[_batch_size(), slot.token])
                if ids is None:  # the slot is no longer ours
                    break
                now = time.monotonic()
                if not ids:
                    # Nothing now: wait on the doorbell while work came lately, within the time box.
                    wait = min(1.0, last_work + idle - now, deadline - now)
                    if wait <= 0:
                        handover = now > deadline and now - last_work < idle
                        break
                    _doorbell_wait(slot, wait)
                    continue
                done += len(inbound_events_process(event_ids=[int(pk) for pk in ids]))
                ack(keys=[inflight, QUEUED_KEY, lock_key], args=[slot.token])
                last_work = time.monotonic()
                if last_work > deadline:
                    handover = True
                    break
        finally:
            _drainer_lock_release(slot)
        if handover:
            # Work keeps coming: a fresh drain task carries on (the time box lets
            # sends queued meanwhile have this worker process first).
            if _redis().llen(PENDING_KEY) or idle > 0:
                inbound_events_drain_task.delay()
            return done
        # An id pushed between our last pop and the release found a drain
        # task already queued or the slot busy: look once more, now unlocked.
        if not _redis().llen(PENDING_KEY):
            return done


def inbound_events_recover(*, wake: bool = True) -> int:
    """Put back the batches of drainers that died (their slot is free and not empty); wake a drain.

    Runs when a worker starts and with every beat re-drive: a slot nobody takes
    again (INBOUND_DRAINERS was lowered) must not keep its ids forever.
    """
    from channels_adapters.tasks import inbound_events_drain_task

    if not settings.REDIS_URL or settings.CELERY_TASK_ALWAYS_EAGER:
        return 0
    client, recover, recovered = _redis(), _script(_RECOVER_LUA), 0
    for key in client.scan_iter(match=INFLIGHT_KEY.format("*")):
        number = key.decode().rsplit(":", 1)[-1]
        count = recover(keys=[key, PENDING_KEY, DRAINER_LOCK.format(number)], args=[""])
        recovered += max(count, 0)
    if recovered:
        logger.warning("Queued again %s inbound ids left by drainers that died", recovered)
    if wake and client.llen(PENDING_KEY):
        inbound_events_drain_task.delay()
    return recovered


def _sort_key(item) -> datetime:
    # Providers do not guarantee order within a batch: the provider's clock decides.
    at = getattr(item, "timestamp", None)
    if isinstance(at, datetime) and at.tzinfo is not None:
        return at
    return datetime.min.replace(tzinfo=UTC)


def inbound_event_process(*, event_id: int) -> InboundEvent | None:
    """Process one stored event (the admin's reprocess, tests). Safe to run again."""
    processed = inbound_events_process(event_ids=[event_id])
    if processed:
        return processed[0]
    return InboundEvent.objects.filter(pk=event_id).first()


def inbound_events_process(*, event_ids: list[int]) -> list[InboundEvent]:
    """Turn stored events into messages and status changes, in arrival order. Safe to run again.

    Claiming and recording outcomes are one query each for the whole batch,
    and so are the reads every message would make (the senders' identities,
    the provider ids already stored); each event's items keep their own
    transactions (a customer's thread is locked only while their message is
    written), so a failure affects one message only.
    """
    from channels_adapters.selectors import channel_get

    with transaction.atomic():
        # skip_locked: an event another worker is claiming right now is theirs.
        events = list(
            InboundEvent.objects.select_for_update(skip_locked=True)
            .filter(pk__in=event_ids)
            .exclude(status=InboundEvent.Status.PROCESSED)
            .order_by("pk")
        )
        InboundEvent.objects.filter(pk__in=[e.pk for e in events]).update(attempts=F("attempts") + 1)
    outcomes: dict[str, list[InboundEvent]] = {}
    now = timezone.now()
    unreadable: list[InboundEvent] = []
    undecryptable: set[int] = set()  # channels found unreadable in this batch: asked and logged once
    parsed: list[tuple[InboundEvent, list, list[dict]]] = []
    for event in events:
        event.attempts += 1
        try:
            if event.channel_id in undecryptable:
                raise EncryptionKeyError("known unreadable")
            channel = channel_get(pk=event.channel_id)
        except EncryptionKeyError:
            # A deployment without the right FIELD_ENCRYPTION_KEYS: nothing is wrong
            # with the event. It stays as it was, this try is not counted, and the
            # re-drive finds it once the key is fixed (/readyz says so meanwhile).
            if event.channel_id not in undecryptable:
                undecryptable.add(event.channel_id)
                logger.error(
                    "Channel %s's credentials cannot be decrypted; its events wait", event.channel_id
                )
            unreadable.append(event)
            continue
        if channel is None:
            continue  # the channel is being deleted, and its events with it
        event.channel = channel
        parsed.append((event, *_event_parse(event)))
    batch = _batch_read(parsed)
    # The receivers that gather their work per batch (the bot's turns) do it once, at the end.
    with _commits_flushed_with_the_outcomes(), signals.announcements_batched():
        for event, items, failed in parsed:
            errors, retryable, summary = _event_apply(event, items=items, failed=failed, batch=batch)
            event.status = InboundEvent.Status.FAILED if errors else InboundEvent.Status.PROCESSED
            event.processed_at = None if errors else now
            event.error, event.retryable, event.summary = "\n".join(errors), retryable, summary
            key = json.dumps([event.status, event.error, retryable, summary], sort_keys=True)
            outcomes.setdefault(key, []).append(event)
    # Most events of a batch end the same way ({"messages": 1}): one UPDATE per outcome.
    for group in outcomes.values():
        first = group[0]
        InboundEvent.objects.filter(pk__in=[e.pk for e in group]).update(
            status=first.status,
            processed_at=first.processed_at,
            error=first.error,
            retryable=first.retryable,
            summary=first.summary,
        )
    if unreadable:
        InboundEvent.objects.filter(pk__in=[e.pk for e in unreadable]).update(attempts=F("attempts") - 1)
    # The batch's pushes left one after another while it was processed; its end
    # waits for the last, so a processed batch is a batch on the agents' screens.
    realtime.pushes_flush()
    return [e for e in events if e not in unreadable]


@contextmanager
def _commits_flushed_with_the_outcomes():
    """The batch's own commits (a transaction per message) do not wait for the WAL flush;
    the outcomes' UPDATE after them does, and with it everything before it in the WAL.

    The stored events are the durable record (committed before the webhook
    answered): a database crash can lose only the last commits of a batch
    whose outcomes it lost too, so those events are still pending and the
    re-drive writes their messages again (a message that survived is found
    by its provider id). A killed worker loses nothing: the database keeps
    and flushes what was committed. One WAL flush per batch instead of one
    per message is most of the drainer's wait on PostgreSQL (bench/drain.py).
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield  # in someone's transaction (tests): its commit decides
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO DEFAULT")
        except Exception:  # noqa: BLE001 - never hand the setting on with a pooled connection
            logger.warning("Could not restore synchronous_commit; closing the connection")
            connection.close()


def _item_ref(item) -> str:
    """How an admin finds the item in the payload: its provider id, else what it is."""
    external_id = getattr(item, "external_id", "")
    if isinstance(item, Rejected):
        return item.ref
    return str(external_id) if external_id else type(item).__name__


@dataclass
class _BatchReads:
    """What a drain batch read at once for its messages (see _batch_read)."""

    identities: object  # customers.selectors.IdentityBatch
    stored: set[tuple[int, str]]  # (channel id, provider id) of messages already stored


def _batch_read(parsed) -> _BatchReads:
    """The batch's senders' identities and its provider ids already stored: two queries.

    A provider's retry of a message stored earlier is then known without
    writing it again to be refused; one repeated within the batch is still
    refused by the (channel, external_id) constraint.
    """
    from conversations.models import Message
    from customers.selectors import identities_for_senders

    senders, external_ids = [], {}
    for event, items, _failed in parsed:
        for _raw, item in items:
            if isinstance(item, InboundMessage) and not item.echo:
                senders.append((item.sender.kind, item.sender.address))
                if item.external_id:
                    external_ids.setdefault(event.channel_id, set()).add(str(item.external_id))
    where = Q()
    for channel_id, ids in external_ids.items():
        where |= Q(channel_id=channel_id, external_id__in=ids)
    stored = set()
    if external_ids:
        stored = set(Message.objects.filter(where).order_by().values_list("channel_id", "external_id"))
    return _BatchReads(identities=identities_for_senders(senders=senders), stored=stored)


def _event_parse(event: InboundEvent) -> tuple[list, list[dict]]:
    """The event's items in the provider's order, each as (as parsed, fitted to the columns or
    the exception fitting raised), and the failure of the payload if unreadable."""
    failed: list[dict] = []
    try:
        items = sorted(adapter_for(event.channel.kind).parse(event.channel, event), key=_sort_key)
    except UnsupportedChannel as exc:  # the channel's kind changed after the event was stored
        items = []
        failed.append({"item": "payload", "reason": str(exc), "transient": False})
    except ParseError as exc:
        items = []
        reason = gettext("Could not read the payload: %(reason)s") % {"reason": exc}
        failed.append({"item": "payload", "reason": reason, "transient": False})
    except Exception as exc:  # noqa: BLE001 - an adapter's bug must not sink the rest of the batch
        logger.exception("Parsing inbound event %s failed", event.pk)
        items = []
        failed.append(
            {
                "item": "payload",
                "reason": gettext("Could not process the payload: %(reason)s")
                % {"reason": error_reason(exc)},
                "transient": error_is_transient(exc),
            }
        )
    return [(raw, _normalized(raw)) for raw in items], failed


def _normalized(raw):
    # The exception is raised again where the item is applied, and recorded there.
    try:
        return item_normalize(raw)
    except Exception as exc:  # noqa: BLE001
        return exc


def _event_apply(
    event: InboundEvent, *, items: list, failed: list[dict], batch: _BatchReads | None = None
) -> tuple[list[str], bool, dict]:
    """Apply one event's items; returns (errors, retryable, summary). Never raises.

    Each item succeeds or fails on its own: a failed one is named in the
    summary's "failed" list with its reason, and the others land. The event is
    re-driven only when a failure may pass (database, Redis or network away);
    one that fails the same way every time waits for an admin's reprocess.
    """
    from conversations.services import receive_inbound, record_echo
    from conversations.statuses import message_status_update, message_status_watermark, message_update

    summary = {"messages": 0, "duplicates": 0, "statuses": 0, "updates": 0, "ignored": []}
    identities = batch.identities if batch is not None else None
    for raw, normalized in items:
        ref = _item_ref(raw)
        try:
            if isinstance(normalized, Exception):
                raise normalized
            item = normalized
            ref = _item_ref(item)
            if isinstance(item, Rejected):
                failed.append({"item": item.ref, "reason": item.reason, "transient": item.transient})
            elif isinstance(item, InboundMessage):
                fields = {
                    "channel": event.channel,
                    "external_id": item.external_id,
                    "text": item.text,
                    "kind": item.kind,
                    "attachments": item.attachments,
                    "timestamp": item.timestamp,
                    "meta": item.meta,
                }
                if item.echo:
                    created = record_echo(recipient=item.sender, **fields).created
                elif batch is not None and (event.channel_id, str(item.external_id)) in batch.stored:
                    created = False  # a provider's retry of a message stored before this batch
                else:
                    result = receive_inbound(
                        sender=item.sender, html=item.html, identities=identities, **fields
                    )
                    created = result.created
                summary["messages" if created else "duplicates"] += 1
            elif isinstance(item, StatusUpdate) and item.watermark is not None:
                message_status_watermark(
                    channel=event.channel,
                    recipient=item.recipient,
                    status=item.status,
                    watermark=item.watermark,
                )
                summary["statuses"] += 1
            elif isinstance(item, StatusUpdate):
                message_status_update(
                    channel=event.channel,
                    external_id=item.external_id,
                    status=item.status,
                    error=item.error,
                    at=item.timestamp,
                    message_id=item.message_id,
                )
                summary["statuses"] += 1
            elif isinstance(item, MessageUpdate):
                updated = message_update(
                    channel=event.channel,
                    external_id=item.external_id,
                    text=item.text,
                    kind=item.kind,
                    meta=item.meta,
                    attachments=item.attachments,
                    at=item.timestamp,
                )
                if updated is None:
                    # The original has not arrived (or was never ours): nothing is made up
                    # in its place, and a reprocess once it is here applies the update.
                    summary["ignored"].append(
                        f"{item.event} of unknown message {item.external_id}: kept in this event, "
                        "reprocess it once the original has arrived"
                    )
                else:
                    summary["updates"] += 1
            elif isinstance(item, Ignored):
                summary["ignored"].append(item.event)
        except Exception as exc:  # noqa: BLE001 - recorded on the event; the rest of the batch lands
            transient = error_is_transient(exc)
            if not isinstance(exc, ValidationError):
                # Bad data (an impossible phone number) is the sender's; anything else may be ours.
                logger.exception("Processing an item of inbound event %s failed", event.pk)
            failed.append({"item": ref, "reason": error_reason(exc), "transient": transient})

    if failed:
        summary["failed"] = [{"item": f["item"], "reason": f["reason"]} for f in failed]
    errors = [text_clean(f"{f['item']}: {f['reason']}") for f in failed]
    # An event that landed keeps the default (retryable) so its outcome groups with the others.
    retryable = any(f["transient"] for f in failed) if failed else True
    return errors, retryable, data_clean(summary)


def inbound_event_reprocess(*, events) -> int:
    """An admin asks for another try (after fixing a channel or deploying a fix)."""
    ids = list(events.exclude(status=InboundEvent.Status.PROCESSED).values_list("pk", flat=True))
    InboundEvent.objects.filter(pk__in=ids).update(
        status=InboundEvent.Status.PENDING, retryable=True, error=""
    )
    inbound_events_enqueue_on_commit(ids)
    return len(ids)


def inbound_events_redrive() -> int:
    """Beat task body: pick up events whose processing was lost or failed transiently."""
    conf = settings.HELPDESK
    before = timezone.now() - timedelta(seconds=conf["INBOUND_STUCK_AFTER_SECONDS"])
    ids = list(
        InboundEvent.objects.filter(received_at__lt=before, attempts__lt=conf["INBOUND_MAX_ATTEMPTS"])
        .filter(Q(status=InboundEvent.Status.PENDING) | Q(status=InboundEvent.Status.FAILED, retryable=True))
        .values_list("pk", flat=True)[:1000]
    )
    if settings.REDIS_URL and not settings.CELERY_TASK_ALWAYS_EAGER:
        inbound_events_recover(wake=False)  # the enqueue below wakes a drain
        _queued_set_repair(event_ids=ids)
    inbound_events_enqueue(event_ids=ids, wake=True)
    return len(ids)


# Past this many waiting ids the repair below would move too much for every beat
# run; a backlog that long is being drained anyway.
_REPAIR_MAX_QUEUED = 50_000


def _queued_set_repair(*, event_ids: list[int]) -> int:
    """Ids marked queued that are on no list (popped by a drainer of an older version, or a
    Redis that lost part of its data) would never be queued again: unmark them."""
    client = _redis()
    if not event_ids or client.scard(QUEUED_KEY) > _REPAIR_MAX_QUEUED:
        return 0
    inflight = list(client.scan_iter(match=INFLIGHT_KEY.format("*")))
    # One MULTI: a drainer moves ids between the lists atomically, so the snapshot sees each once.
    with client.pipeline(transaction=True) as pipe:
        pipe.smismember(QUEUED_KEY, event_ids)
        pipe.lrange(PENDING_KEY, 0, -1)
        for key in inflight:
            pipe.lrange(key, 0, -1)
        marked, *lists = pipe.execute()
    listed = {int(pk) for ids in lists for pk in ids}
    orphans = [pk for pk, is_marked in zip(event_ids, marked, strict=True) if is_marked and pk not in listed]
    if orphans:
        logger.warning("%s inbound ids were marked queued but on no list: queued again", len(orphans))
        client.srem(QUEUED_KEY, *orphans)
    return len(orphans)
