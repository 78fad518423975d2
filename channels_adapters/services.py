"""Inbound webhooks: store first, then normalize through the channel's adapter.

Every webhook of every kind ends in `inbound_events_process`, the one shared
path from a provider's payload to messages on threads.

Hand-off to the workers: the webhook's only job after the INSERT is one Redis
RPUSH of the event id on a pending list (a Celery task per webhook cost more
than the rest of the request). A drain task pops the list in batches; one is
queued when the list goes from empty to not empty, and one more per
`INBOUND_BATCH_SIZE` ids so that, where INBOUND_DRAINERS allows more than one,
several workers share a burst. The database stays the source of truth: an id
lost between Redis and a worker (a crash after the pop) leaves its event
pending, and the beat re-drive pushes it again and wakes a drainer.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
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
from helpdesk.fields import EncryptionKeyError

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
_redis_client = None


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def _batch_size() -> int:
    return settings.HELPDESK["INBOUND_BATCH_SIZE"]


def inbound_events_enqueue(*, event_ids: list[int], wake: bool = False) -> None:
    """Hand stored events to the workers. Call after commit: a worker must find the rows.

    `wake` queues a drain even if the list was not empty (the beat re-drive:
    ids left on the list by a drainer that died must not wait for the next burst).
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
    length = _redis().rpush(PENDING_KEY, *event_ids)
    before, size = length - len(event_ids), _batch_size()
    if wake or before == 0 or before // size != length // size:
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


DRAINER_LOCK = "helpdesk:inbound:drainer:{}"


def _drainer_lock_take():
    """One of INBOUND_DRAINERS slots, or None when every slot is at work."""
    conf = settings.HELPDESK
    for slot in range(conf["INBOUND_DRAINERS"]):
        # A crashed drainer's slot frees itself; its popped ids are re-driven by beat.
        lock = _redis().lock(DRAINER_LOCK.format(slot), timeout=conf["INBOUND_DRAIN_SECONDS"] + 60)
        if lock.acquire(blocking=False):
            return lock
    return None


def _drainer_lock_renew(lock) -> None:
    """Still alive: the slot's timeout starts again."""
    from redis.exceptions import LockError

    try:
        lock.reacquire()
    except LockError:
        logger.warning("An inbound drainer outlived its lock; another may run alongside it")


def _drainer_lock_release(lock) -> None:
    from redis.exceptions import LockError

    try:
        lock.release()
    except LockError:
        logger.warning("An inbound drainer outlived its lock; another may have run alongside it")


def inbound_events_drain(*, max_seconds: float | None = None) -> int:
    """Drain task body: process pending ids in batches until the list is empty.

    At most INBOUND_DRAINERS drains run at once (default 1): on a small machine
    the other worker processes stay free for outbound sends and the web tier
    keeps its CPU, and with one drainer messages land in arrival order. A
    drain task finding every slot taken leaves: the running drainer empties
    the list. Time-boxed so a long burst does not hold a worker process;
    what is left gets another drain task. Returns events processed.
    """
    from channels_adapters.tasks import inbound_events_drain_task

    max_seconds = settings.HELPDESK["INBOUND_DRAIN_SECONDS"] if max_seconds is None else max_seconds
    deadline = time.monotonic() + max_seconds
    done = 0
    while True:
        lock = _drainer_lock_take()
        if lock is None:
            return done
        handover = False
        try:
            while ids := _redis().lpop(PENDING_KEY, _batch_size()):
                done += len(inbound_events_process(event_ids=[int(pk) for pk in ids]))
                _drainer_lock_renew(lock)
                if time.monotonic() > deadline:
                    handover = True
                    break
        finally:
            _drainer_lock_release(lock)
        if handover:
            if _redis().llen(PENDING_KEY):
                inbound_events_drain_task.delay()
            return done
        # An id pushed between our last pop and the release found a drain
        # task already queued or the slot busy: look once more, now unlocked.
        if not _redis().llen(PENDING_KEY):
            return done


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

    Claiming and recording outcomes are one query each for the whole batch;
    each event's items keep their own transactions (a customer's thread is
    locked only while their message is written).
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
    for event in events:
        event.attempts += 1
        try:
            channel = channel_get(pk=event.channel_id)
        except EncryptionKeyError:
            # A deployment without the right FIELD_ENCRYPTION_KEYS: nothing is wrong
            # with the event. It stays as it was, this try is not counted, and the
            # re-drive finds it once the key is fixed (/readyz says so meanwhile).
            logger.error(
                "Channel %s's credentials cannot be decrypted; event %s waits", event.channel_id, event.pk
            )
            unreadable.append(event)
            continue
        if channel is None:
            continue  # the channel is being deleted, and its events with it
        event.channel = channel
        errors, retryable, summary = _event_apply(event)
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
    return [e for e in events if e not in unreadable]


def _item_ref(item) -> str:
    """How an admin finds the item in the payload: its provider id, else what it is."""
    external_id = getattr(item, "external_id", "")
    if isinstance(item, Rejected):
        return item.ref
    return str(external_id) if external_id else type(item).__name__


def _event_apply(event: InboundEvent) -> tuple[list[str], bool, dict]:
    """Apply one event's items; returns (errors, retryable, summary). Never raises.

    Each item succeeds or fails on its own: a failed one is named in the
    summary's "failed" list with its reason, and the others land. The event is
    re-driven only when a failure may pass (database, Redis or network away);
    one that fails the same way every time waits for an admin's reprocess.
    """
    from conversations.services import (
        message_status_update,
        message_status_watermark,
        message_update,
        receive_inbound,
        record_echo,
    )

    summary = {"messages": 0, "duplicates": 0, "statuses": 0, "updates": 0, "ignored": []}
    try:
        adapter = adapter_for(event.channel.kind)
    except UnsupportedChannel as exc:  # the channel's kind changed after the event was stored
        return [f"payload: {exc}"], False, summary
    failed: list[dict] = []
    try:
        items = sorted(adapter.parse(event.channel, event), key=_sort_key)
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
    for raw in items:
        ref = _item_ref(raw)
        try:
            item = item_normalize(raw)
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
                    result = record_echo(recipient=item.sender, **fields)
                else:
                    result = receive_inbound(sender=item.sender, html=item.html, **fields)
                summary["messages" if result.created else "duplicates"] += 1
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
                )
                summary["statuses"] += 1
            elif isinstance(item, MessageUpdate):
                message_update(
                    channel=event.channel,
                    external_id=item.external_id,
                    text=item.text,
                    kind=item.kind,
                    meta=item.meta,
                    attachments=item.attachments,
                    at=item.timestamp,
                )
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
    inbound_events_enqueue(event_ids=ids, wake=True)
    return len(ids)
