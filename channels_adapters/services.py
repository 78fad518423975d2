"""Inbound webhooks: store first, then normalize through the channel's adapter.

Every webhook of every kind ends in `inbound_event_process`, the one shared
path from a provider's payload to messages on threads.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from channels_adapters.base import Ignored, InboundMessage, MessageUpdate, ParseError, StatusUpdate
from channels_adapters.models import Channel, InboundEvent
from channels_adapters.registry import adapter_for

logger = logging.getLogger(__name__)

# Headers worth keeping for a replay or an investigation; never cookies or auth.
_DROPPED_HEADERS = {"cookie", "authorization"}


def inbound_event_store(*, channel: Channel, request: HttpRequest) -> InboundEvent:
    """Keep the raw request, then queue its processing after commit."""
    from channels_adapters.tasks import inbound_event_process_task

    event = InboundEvent.objects.create(
        channel=channel,
        body=request.body,
        headers={k: v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS},
        content_type=request.content_type or "",
        query_string=request.META.get("QUERY_STRING", ""),
    )
    transaction.on_commit(lambda: inbound_event_process_task.delay(event.pk))
    return event


def _sort_key(item) -> datetime:
    # Providers do not guarantee order within a batch: the provider's clock decides.
    return getattr(item, "timestamp", None) or datetime.min.replace(tzinfo=UTC)


def inbound_event_process(*, event_id: int) -> InboundEvent | None:
    """Turn a stored event into messages and status changes. Safe to run again."""
    from conversations.services import (
        message_status_update,
        message_status_watermark,
        message_update,
        receive_inbound,
        record_echo,
    )

    with transaction.atomic():
        event = (
            InboundEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel")
            .filter(pk=event_id)
            .first()
        )
        if event is None or event.status == InboundEvent.Status.PROCESSED:
            return event
        event.attempts += 1
        event.save(update_fields=["attempts"])

    adapter = adapter_for(event.channel.kind)
    summary = {"messages": 0, "duplicates": 0, "statuses": 0, "updates": 0, "ignored": []}
    errors: list[str] = []
    retryable = True
    try:
        items = sorted(adapter.parse(event.channel, event), key=_sort_key)
    except ParseError as exc:
        items, retryable = [], False
        errors.append(f"Could not read the payload: {exc}")
    for item in items:
        try:
            if isinstance(item, InboundMessage):
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
        except ValidationError as exc:
            # Bad data in one item (an impossible phone number) will not get
            # better on retry; the rest of the batch still lands.
            retryable = False
            errors.append(f"{getattr(item, 'external_id', item)}: {'; '.join(exc.messages)}")
        except Exception as exc:  # noqa: BLE001 - recorded on the event, retried by beat
            logger.exception("Processing inbound event %s failed", event.pk)
            errors.append(f"{getattr(item, 'external_id', item)}: {exc!r}")

    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.FAILED if errors else InboundEvent.Status.PROCESSED,
        processed_at=None if errors else timezone.now(),
        error="\n".join(errors),
        retryable=retryable,
        summary=summary,
    )
    event.refresh_from_db()
    return event


def inbound_event_reprocess(*, events) -> int:
    """An admin asks for another try (after fixing a channel or deploying a fix)."""
    from channels_adapters.tasks import inbound_event_process_task

    ids = list(events.exclude(status=InboundEvent.Status.PROCESSED).values_list("pk", flat=True))
    InboundEvent.objects.filter(pk__in=ids).update(
        status=InboundEvent.Status.PENDING, retryable=True, error=""
    )
    for pk in ids:
        transaction.on_commit(lambda pk=pk: inbound_event_process_task.delay(pk))
    return len(ids)


def inbound_events_redrive() -> int:
    """Beat task body: pick up events whose processing was lost or failed transiently."""
    from channels_adapters.tasks import inbound_event_process_task

    conf = settings.HELPDESK
    before = timezone.now() - timedelta(seconds=conf["INBOUND_STUCK_AFTER_SECONDS"])
    ids = list(
        InboundEvent.objects.filter(received_at__lt=before, attempts__lt=conf["INBOUND_MAX_ATTEMPTS"])
        .filter(Q(status=InboundEvent.Status.PENDING) | Q(status=InboundEvent.Status.FAILED, retryable=True))
        .values_list("pk", flat=True)[:1000]
    )
    for pk in ids:
        inbound_event_process_task.delay(pk)
    return len(ids)
