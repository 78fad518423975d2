"""row_insert stores a new row as save() does, in one statement the ORM did not compile."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.inserts import row_insert, row_update
from conversations.models import Case, Message
from tests.factories import ChannelFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_row_inserted_reads_back_as_the_one_saved_by_the_orm():
    channel = ChannelFactory()
    thread = CustomerFactory().thread
    case = Case(thread=thread, origin_channel=channel, subject="Where is my order?", opened_at=timezone.now())
    with CaptureQueriesContext(connection) as captured:
        row_insert(case)
    assert len(captured.captured_queries) == 1 and case.pk is not None and not case._state.adding
    fields = {"thread": thread, "case": case, "channel": channel, "direction": "in", "author": "customer"}
    raw = Message(**fields, body="ñ", meta={"a": [1]}, attachments=[{"url": "x"}], created_at=case.opened_at)
    row_insert(raw)
    saved = Message.objects.create(
        **fields, body="ñ", meta={"a": [1]}, attachments=[{"url": "x"}], created_at=case.opened_at
    )

    def columns(pk):
        return {k: v for k, v in Message.objects.filter(pk=pk).values().get().items() if k != "id"}

    assert columns(raw.pk) == columns(saved.pk)
    stored = Case.objects.get(pk=case.pk)
    # auto_now and the defaults come out as save() would set them.
    assert stored.updated_at is not None and stored.status == "open" and stored.reopen_count == 0


def test_a_row_updated_changes_only_the_fields_named_in_one_statement():
    case = Case.objects.create(
        thread=CustomerFactory().thread, origin_channel=ChannelFactory(), opened_at=timezone.now()
    )
    before = case.updated_at
    Case.objects.filter(pk=case.pk).update(subject="set by an agent meanwhile")
    case.status, case.reopen_count = "pending", 2
    with CaptureQueriesContext(connection) as captured:
        row_update(case, fields=["status", "reopen_count", "updated_at"])
    assert len(captured.captured_queries) == 1
    stored = Case.objects.get(pk=case.pk)
    assert (stored.status, stored.reopen_count) == ("pending", 2) and stored.updated_at > before
    assert stored.subject == "set by an agent meanwhile"
