"""Pushes ask the visibility rule's groups per case: a receipt covering many
messages must not cost a query per message to find their cases."""

import pytest
from django.utils import timezone

from channels_adapters.base import Sender
from conversations.statuses import message_status_watermark
from tests.factories import CaseFactory, ChannelFactory, IdentityFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("count", [2, 20])
def test_a_watermark_receipt_pushes_without_a_query_per_message(
    count, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(kind="facebook", credentials={"page_id": "1"})
    identity = IdentityFactory(kind="facebook", address="psid-9")
    case = CaseFactory(thread=identity.customer.thread, origin_channel=channel)
    for _ in range(count):
        MessageFactory(
            case=case, channel=channel, identity=identity, direction="out", author="agent", status="sent"
        )
    with django_assert_max_num_queries(6), django_capture_on_commit_callbacks(execute=True) as callbacks:
        updated = message_status_watermark(
            channel=channel,
            recipient=Sender("facebook", "psid-9"),
            status="read",
            watermark=timezone.now(),
        )
    assert updated == count and len(callbacks) == count
