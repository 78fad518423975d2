import pytest
from django.urls import reverse

from conversations.services import receive_inbound
from integrations import delivery
from integrations.admin import MASK
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from tests.integrations.conftest import ANA
from tests.provider_server import Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(user)
    return client


def test_a_subscription_made_in_admin_shows_its_secret_once(admin_client, receiver):
    response = admin_client.post(
        reverse("admin:integrations_webhooksubscription_add"),
        {"url": receiver.url + "/hook", "description": "CRM", "events": ["case.opened", "message.created"],
         "is_active": "on"},
        follow=True,
    )  # fmt: skip
    assert response.status_code == 200
    subscription = WebhookSubscription.objects.get()
    assert subscription.events == ["case.opened", "message.created"]
    assert subscription.secret.startswith("whsec_")
    assert subscription.secret in response.content.decode()
    page = admin_client.get(
        reverse("admin:integrations_webhooksubscription_change", args=[subscription.pk])
    ).content.decode()
    assert subscription.secret not in page and MASK + subscription.secret[-4:] in page


def test_rotate_secret_and_resume_actions(admin_client, subscribe):
    from django.utils import timezone

    subscription = subscribe(events=["case.opened"])
    old = subscription.secret
    url = reverse("admin:integrations_webhooksubscription_changelist")
    response = admin_client.post(
        url, {"action": "rotate_secret", "_selected_action": [subscription.pk]}, follow=True
    )
    subscription.refresh_from_db()
    assert subscription.secret != old and subscription.secret in response.content.decode()

    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        paused_at=timezone.now(), paused_reason="Paused automatically", consecutive_failures=10
    )
    page = admin_client.get(
        reverse("admin:integrations_webhooksubscription_change", args=[subscription.pk])
    ).content.decode()
    assert "Paused automatically" in page
    paused_only = admin_client.get(url, {"paused_at__isempty": "0"}).content.decode()
    assert reverse("admin:integrations_webhooksubscription_change", args=[subscription.pk]) in paused_only
    admin_client.post(url, {"action": "resume", "_selected_action": [subscription.pk]})
    subscription.refresh_from_db()
    assert subscription.paused_at is None and subscription.consecutive_failures == 0


def test_deliveries_list_detail_and_replay(admin_client, subscribe, channel, receiver):
    receiver.script(Reply(500, "nope"), Reply(200, {}))
    subscribe(events=["message.created"])
    receive_inbound(channel=channel, sender=ANA, external_id="in-1", text="hi")
    row = WebhookDelivery.objects.get()
    delivery.webhook_deliver(delivery_id=row.pk)

    changelist = reverse("admin:integrations_webhookdelivery_changelist")
    assert admin_client.get(changelist, {"status": "pending", "event": "message.created"}).status_code == 200
    page = admin_client.get(
        reverse("admin:integrations_webhookdelivery_change", args=[row.pk])
    ).content.decode()
    assert "HTTP 500" in page and "nope" in page  # the attempt inline: error and response excerpt

    admin_client.post(changelist, {"action": "replay", "_selected_action": [row.pk]})
    copy = WebhookDelivery.objects.get(replay_of=row)
    assert copy.event_id == row.event_id and copy.status == "pending"
    assert WebhookAttempt.objects.filter(delivery=copy).count() == 0
