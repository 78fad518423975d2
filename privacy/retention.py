"""Retention: content older than the configured age goes, the KPIs' counts and times stay.

Settings (helpdesk/settings.py HELPDESK_PRIVACY, from the environment), each
overridable per channel in Channel.settings["retention"]:
- message_content_days: a message's body, HTML, attachments (and their files)
  and content meta go once it is this old; the message row stays for the KPIs.
- inbound_event_days: a processed webhook's raw body and headers go once this old
  (failed ones wait for a person and are kept).
0 or missing: kept forever. Run by beat (privacy.tasks.retention_run), logged as a
RetentionRun and in the audit log.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record
from privacy.erasure import KPI_META_KEYS, _files_delete, _stored_paths
from privacy.models import RetentionRun

logger = logging.getLogger(__name__)
BATCH = 1000


def _days(channel, key: str) -> int:
    own = ((channel.settings or {}).get("retention") or {}).get(key) if channel is not None else None
    if own is not None:
        return max(0, int(own))
    return max(0, int(settings.HELPDESK_PRIVACY[f"RETENTION_{key.upper()}"]))


def _messages_expire(*, channel, cutoff) -> int:
    from conversations.models import Message

    qs = Message.objects.filter(created_at__lt=cutoff).exclude(meta__has_key="content_removed")
    qs = qs.filter(channel=channel) if channel is not None else qs.filter(channel__isnull=True)
    done = 0
    while True:
        batch = list(qs.only("pk", "attachments", "meta").order_by("pk")[:BATCH])
        if not batch:
            return done
        files = []
        with transaction.atomic():
            for message in batch:
                files += _stored_paths(message)
                meta = {k: v for k, v in (message.meta or {}).items() if k in KPI_META_KEYS}
                meta["content_removed"] = "retention"
                Message.objects.filter(pk=message.pk).update(
                    body="", html="", attachments=[], error="", meta=meta
                )
            transaction.on_commit(lambda files=files: _files_delete(files))
        done += len(batch)


def _events_expire(*, channel, cutoff) -> int:
    from channels_adapters.models import InboundEvent

    qs = InboundEvent.objects.filter(
        channel=channel, received_at__lt=cutoff, status=InboundEvent.Status.PROCESSED
    ).exclude(body=b"")
    done = 0
    while True:
        ids = list(qs.order_by("pk").values_list("pk", flat=True)[:BATCH])
        if not ids:
            return done
        done += InboundEvent.objects.filter(pk__in=ids).update(body=b"", headers={}, query_string="")


def retention_run(*, now=None) -> RetentionRun:
    from channels_adapters.models import Channel

    now = now or timezone.now()
    run = RetentionRun.objects.create()
    counts = {}
    try:
        for channel in [*Channel.objects.order_by("pk"), None]:
            label = channel.key if channel is not None else "no_channel"
            entry = {}
            days = _days(channel, "message_content_days")
            if days:
                entry["messages"] = _messages_expire(channel=channel, cutoff=now - timedelta(days=days))
            if channel is not None:
                days = _days(channel, "inbound_event_days")
                if days:
                    entry["inbound_events"] = _events_expire(
                        channel=channel, cutoff=now - timedelta(days=days)
                    )
            if any(entry.values()):
                counts[label] = entry
    except Exception as exc:
        logger.exception("Retention run failed")
        run.error = str(exc)[:5000]
        raise
    finally:
        run.counts = counts
        run.finished_at = timezone.now()
        run.save(update_fields=["counts", "finished_at", "error"])
        audit_record(
            action=AuditAction.RETENTION_RUN, target=run, details={"counts": counts, "error": run.error}
        )
    return run
