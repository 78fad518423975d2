import io
import json

import pytest
from django.core.management import call_command

from channels_adapters.models import Channel, InboundEvent
from conversations.models import CannedResponse, Message
from customers.models import Customer
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(user)
    return client


def test_credentials_are_encrypted_at_rest():
    from django.db import connection

    channel = ChannelFactory(credentials={"secret": "very-secret-value", "callback_url": "http://x"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM channels_adapters_channel WHERE id = %s", [channel.pk])
        raw = cursor.fetchone()[0]
    assert "very-secret-value" not in raw and raw.startswith("gAAAA")
    assert Channel.objects.get(pk=channel.pk).credentials["secret"] == "very-secret-value"


def credential_fields(credentials: dict) -> dict:
    return {f"credential_{key}": value for key, value in credentials.items()}


def test_channel_page_never_shows_secrets_and_shows_the_webhook_url(admin_client):
    channel = ChannelFactory(
        credentials={"secret": "abcdefghijklmnop-1234", "callback_url": "https://crm.example.com/in"}
    )
    page = admin_client.get(f"/admin/channels_adapters/channel/{channel.pk}/change/").content.decode()
    assert "abcdefghijklmnop-1234" not in page and "1234" not in page
    assert 'type="password" name="credential_secret"' in page
    assert "A value is stored; leave blank to keep it." in page
    assert "https://crm.example.com/in" in page  # not a secret: shown in full
    assert f"/hooks/{channel.key}/" in page


def test_saving_with_a_blank_secret_keeps_the_stored_one(admin_client):
    channel = ChannelFactory(credentials={"secret": "abcdefghijklmnop-1234", "callback_url": "http://a"})
    form = {
        "kind": "api",
        "name": "Renamed",
        "is_active": "on",
        "monthly_cost": "10",
        "settings": "{}",
        **credential_fields({"secret": "", "callback_url": "http://b.example.com/in"}),
    }
    response = admin_client.post(f"/admin/channels_adapters/channel/{channel.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    channel.refresh_from_db()
    assert channel.name == "Renamed"
    assert channel.credentials == {
        "secret": "abcdefghijklmnop-1234",
        "callback_url": "http://b.example.com/in",
    }


def test_active_channel_without_required_credentials_is_refused(admin_client):
    form = {
        "kind": "api",
        "name": "Half set up",
        "is_active": "on",
        "monthly_cost": "0",
        "settings": "{}",
        **credential_fields({"secret": ""}),
    }
    response = admin_client.post("/admin/channels_adapters/channel/add/", form)
    assert response.status_code == 200
    assert "An active channel needs: Shared secret, Callback URL" in response.content.decode()
    assert not Channel.objects.exists()


def test_failed_event_can_be_reprocessed_from_admin(admin_client, django_capture_on_commit_callbacks):
    channel = ChannelFactory()
    event = InboundEvent.objects.create(
        channel=channel,
        body=b'{"external_id": "r1", "from": {"email": "a@example.com"}, "text": "hi"}',
        status=InboundEvent.Status.FAILED,
        retryable=False,
        error="worker crashed",
    )
    listing = admin_client.get("/admin/channels_adapters/inboundevent/?status__exact=failed")
    assert "worker crashed" in listing.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        admin_client.post(
            "/admin/channels_adapters/inboundevent/",
            {"action": "reprocess", "_selected_action": [event.pk]},
        )
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PENDING and event.retryable
    assert len(callbacks) == 1  # one processing task queued after commit


@pytest.mark.parametrize(
    "path",
    [
        "/admin/customers/customer/",
        "/admin/customers/identity/",
        "/admin/conversations/case/",
        "/admin/conversations/message/",
        "/admin/channels_adapters/channel/",
        "/admin/channels_adapters/inboundevent/",
        "/admin/channels_adapters/mailboxstate/",
    ],
)
def test_admin_lists_keep_a_flat_query_count(admin_client, django_assert_max_num_queries, path):
    call_command("seed_demo", stdout=io.StringIO())
    with django_assert_max_num_queries(15):
        assert admin_client.get(path).status_code == 200


def test_seed_demo_builds_cross_channel_history():
    call_command("seed_demo", stdout=io.StringIO())
    ana = Customer.objects.get(name="Ana Silva")
    kinds = set(Message.objects.filter(thread=ana.thread).values_list("channel__kind", flat=True).distinct())
    assert {"facebook", "voice", "whatsapp"} <= kinds
    assert Customer.objects.count() >= 8
    assert CannedResponse.objects.filter(shortcut="tracking").exists()
    # Running it again changes nothing.
    call_command("seed_demo", stdout=io.StringIO())
    assert Customer.objects.filter(name="Ana Silva").count() == 1


def _webchat_form(**settings):
    return {
        "kind": "webchat",
        "name": "Website chat",
        "is_active": "on",
        "monthly_cost": "0",
        "settings": json.dumps(settings),
        **credential_fields({"identity_secret": ""}),
    }


def test_a_website_chat_is_created_with_its_own_secret_and_shows_its_snippet(admin_client):
    form = _webchat_form(allowed_origins=["https://shop.example.com"], color="#ff6600")
    response = admin_client.post("/admin/channels_adapters/channel/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get()
    assert len(channel.credentials["identity_secret"]) >= 32
    page = admin_client.get(f"/admin/channels_adapters/channel/{channel.pk}/change/").content.decode()
    assert f"/widget/{channel.key}.js" in page and "async&gt;&lt;/script&gt;" in page


def test_mistyped_website_chat_settings_are_refused_in_words(admin_client):
    form = _webchat_form(allowed_origins=["shop.example.com/path"], color="orange", prechat={"email": "yes"})
    response = admin_client.post("/admin/channels_adapters/channel/add/", form)
    assert response.status_code == 200
    page = response.content.decode()
    assert "allowed_origins: Not an origin" in page and "color: A colour like" in page and "prechat:" in page
    assert not Channel.objects.exists()
