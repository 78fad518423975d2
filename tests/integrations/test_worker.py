"""Deliveries through the real broker and a real Celery worker."""

from conversations.cases import assign_case
from conversations.services import receive_inbound
from integrations.models import WebhookAttempt, WebhookDelivery
from tests.conftest import wait_for
from tests.factories import ChannelFactory, UserFactory
from tests.integrations.conftest import ANA, verified
from tests.provider_server import Reply


def test_worker_retries_with_backoff_then_delivers_in_order(live_worker, receiver, subscribe, settings):
    settings.HELPDESK_WEBHOOKS = {
        **settings.HELPDESK_WEBHOOKS,
        "BACKOFF_SECONDS": 0.2,
        "BACKOFF_MAX_SECONDS": 1.0,
    }
    receiver.script(Reply(500, {"error": "boom"}), Reply(200, {}))
    subscription = subscribe(events=["message.created", "case.assigned"])
    message = receive_inbound(channel=ChannelFactory(), sender=ANA, external_id="in-1", text="hi").message
    assign_case(case=message.case, assignee=UserFactory())

    wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").count() == 2)
    first, second = WebhookDelivery.objects.order_by("pk")
    assert list(WebhookAttempt.objects.filter(delivery=first).values_list("status_code", flat=True)) == [
        500,
        200,
    ]
    assert WebhookAttempt.objects.filter(delivery=second).count() == 1
    # The first event failed once; the second waited for it instead of overtaking it.
    assert [verified(subscription, r)["type"] for r in receiver.requests] == [
        "message.created",
        "message.created",
        "case.assigned",
    ]
