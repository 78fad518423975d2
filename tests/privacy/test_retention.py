from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from channels_adapters.models import InboundEvent
from conversations.attachments import attachment_save
from conversations.models import Message
from privacy.models import RetentionRun
from privacy.retention import retention_run
from tests.factories import ChannelFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_retention_removes_old_content_per_channel_and_logs_it(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    settings.HELPDESK_PRIVACY = {"RETENTION_MESSAGE_CONTENT_DAYS": 365, "RETENTION_INBOUND_EVENT_DAYS": 30}
    now = timezone.now()
    default = ChannelFactory()
    short = ChannelFactory(settings={"retention": {"message_content_days": 30, "inbound_event_days": 0}})
    photo = attachment_save(content=b"old photo", name="p.png", content_type="image/png")
    old = MessageFactory(
        channel=default,
        created_at=now - timedelta(days=400),
        body="old words",
        attachments=[photo],
        meta={"answered": True, "subject": "hello"},
    )
    recent = MessageFactory(channel=default, created_at=now - timedelta(days=100), body="recent words")
    short_old = MessageFactory(channel=short, created_at=now - timedelta(days=40), body="short-lived words")
    event_old = InboundEvent.objects.create(channel=default, body=b"raw old", status="processed")
    event_failed = InboundEvent.objects.create(channel=default, body=b"raw failed", status="failed")
    event_short = InboundEvent.objects.create(channel=short, body=b"raw kept", status="processed")
    InboundEvent.objects.filter(pk__in=[event_old.pk, event_failed.pk, event_short.pk]).update(
        received_at=now - timedelta(days=60)
    )

    with django_capture_on_commit_callbacks(execute=True):
        run = retention_run(now=now)

    old.refresh_from_db()
    assert (
        old.body == ""
        and old.attachments == []
        and old.meta == {"answered": True, "content_removed": "retention"}
    )
    assert not (tmp_path / photo["path"]).exists()
    assert Message.objects.get(pk=recent.pk).body == "recent words"
    assert Message.objects.get(pk=short_old.pk).body == ""
    assert bytes(InboundEvent.objects.get(pk=event_old.pk).body) == b""
    assert bytes(InboundEvent.objects.get(pk=event_failed.pk).body) == b"raw failed"
    assert bytes(InboundEvent.objects.get(pk=event_short.pk).body) == b"raw kept"  # 0 on the channel: kept
    assert run.counts == {default.key: {"messages": 1, "inbound_events": 1}, short.key: {"messages": 1}}
    assert RetentionRun.objects.get().finished_at is not None
    assert AuditEntry.objects.get(action=AuditAction.RETENTION_RUN).details["counts"] == run.counts
    # A second pass finds nothing left to remove.
    assert retention_run(now=now).counts == {}


def test_retention_is_a_beat_task(settings):
    assert settings.CELERY_BEAT_SCHEDULE["privacy-retention"]["task"] == "privacy.tasks.retention_run"
    from helpdesk.celery_app import app

    app.loader.import_default_modules()
    assert "privacy.tasks.retention_run" in app.tasks
