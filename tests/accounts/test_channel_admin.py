"""The channel admin: a field per credential, secrets never shown back, validation in words,
and "Test connection" calling each provider's real client against local servers."""

import os

import pytest

from channels_adapters.connection import channel_connection_check
from channels_adapters.models import Channel
from tests.channels_adapters.email_support import SMTP_PASSWORD, SmtpServer, email_channel
from tests.factories import ChannelFactory
from tests.imap_server import DOVECOT, DovecotServer
from tests.provider_server import Reply

pytestmark = pytest.mark.django_db

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "7000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456"))
    return client


def form(kind, name="Acme", **credentials):
    data = {"kind": kind, "name": name, "is_active": "on", "monthly_cost": "0", "settings": "{}"}
    data.update({f"credential_{key}": value for key, value in credentials.items()})
    return data


def test_the_form_has_a_field_per_credential_and_secrets_are_password_inputs(admin_client):
    channel = ChannelFactory(
        kind="telegram", name="Bot", credentials={"bot_token": TOKEN, "secret_token": "hook-secret-1"}
    )
    page = admin_client.get(f"/admin/channels_adapters/channel/{channel.pk}/change/").content.decode()
    assert 'type="password" name="credential_bot_token"' in page
    assert TOKEN not in page and "hook-secret-1" not in page
    # Each field says which kinds use it; the admin's script hides the others.
    assert 'data-channel-kinds="sms whatsapp_twilio voice"' in page
    assert "channels_adapters/channel_admin.js" in page


def test_mistyped_credentials_are_refused_in_words_and_nothing_is_saved(admin_client):
    response = admin_client.post(
        "/admin/channels_adapters/channel/add/",
        form("sms", account_sid="12345", auth_token="t0k3n", phone_number="call me"),
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "A Twilio account SID starts with AC and has 34 characters." in page
    assert "Not a phone number; write it like +34 600 000 000." in page
    assert not Channel.objects.exists()
    response = admin_client.post(
        "/admin/channels_adapters/channel/add/",
        form("email", address="not-an-address", imap_port="99999", smtp_host="https://mail.example.com"),
    )
    page = response.content.decode()
    assert "A port is a number from 1 to 65535." in page and "no “https://”" in page
    assert not Channel.objects.exists()


def test_valid_credentials_are_stored_normalized_and_a_blank_secret_keeps_the_stored_one(admin_client):
    response = admin_client.post(
        "/admin/channels_adapters/channel/add/",
        form("sms", account_sid=SID, auth_token="first-token", phone_number="+34 600 11 22 33"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    channel = Channel.objects.get()
    assert channel.credentials == {
        "account_sid": SID,
        "auth_token": "first-token",
        "phone_number": "+34600112233",
    }
    response = admin_client.post(
        f"/admin/channels_adapters/channel/{channel.pk}/change/",
        form("sms", name="Renamed", account_sid=SID, auth_token="", phone_number="+34600112233"),
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "Renamed" and channel.credentials["auth_token"] == "first-token"


def test_the_button_tests_the_connection_and_says_what_is_wrong(admin_client, bot_api):
    channel = ChannelFactory(
        kind="telegram", name="Bot", credentials={"bot_token": TOKEN, "secret_token": "s"}
    )
    bot_api.script(Reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"}))
    url = f"/admin/channels_adapters/channel/{channel.pk}/test-connection/"
    assert admin_client.get(url).status_code == 405  # a call to the provider is a POST
    page = admin_client.post(url, follow=True).content.decode()
    assert "Telegram rejected the bot token: copy it again from @BotFather." in page
    assert bot_api.requests[-1].path == f"/bot{TOKEN}/getMe"
    bot_api.script(
        Reply(
            200,
            {
                "ok": True,
                "result": {"id": 7000001, "is_bot": True, "first_name": "Acme", "username": "acme_bot"},
            },
        )
    )
    page = admin_client.post(url, follow=True).content.decode()
    assert "Telegram knows this bot: @acme_bot." in page


def test_the_list_action_tests_each_selected_channel(admin_client, graph):
    page_channel = ChannelFactory(
        kind="facebook",
        name="Acme page",
        credentials={"page_id": "111", "page_access_token": "tok", "app_secret": "s", "verify_token": "v"},
    )
    graph.script(Reply(200, {"id": "222", "name": "Another page"}))
    response = admin_client.post(
        "/admin/channels_adapters/channel/",
        {"action": "test_connection", "_selected_action": [page_channel.pk]},
        follow=True,
    )
    assert "The page access token belongs to page 222, not to page_id 111." in response.content.decode()
    sent = graph.requests[-1]
    assert sent.path == "/v23.0/me" and sent.headers["authorization"] == "Bearer tok"


def test_meta_token_errors_in_plain_words(graph):
    channel = ChannelFactory(
        kind="whatsapp",
        credentials={"phone_number_id": "555", "access_token": "old", "app_secret": "s", "verify_token": "v"},
    )
    graph.script(
        Reply(
            400,
            {"error": {"message": "Error validating access token", "code": 190, "type": "OAuthException"}},
        )
    )
    result = channel_connection_check(channel=channel)
    assert not result.ok and "access_token" in result.message and "190" in result.message
    graph.script(Reply(200, {"display_phone_number": "+34 600 000 000", "verified_name": "Acme"}))
    result = channel_connection_check(channel=channel)
    assert result.ok and result.message == "Meta knows this number: +34 600 000 000 (Acme)."
    assert graph.requests[-1].path == "/v23.0/555"


def test_twilio_account_fetch(twilio):
    channel = ChannelFactory(
        kind="voice", credentials={"account_sid": SID, "auth_token": "bad", "phone_number": "+34600112233"}
    )
    twilio.script(Reply(401, {"code": 20003, "message": "Authenticate", "status": 401}))
    result = channel_connection_check(channel=channel)
    assert not result.ok and result.message.startswith("Twilio refused the account SID and auth token")
    assert twilio.requests[-1].path == f"/2010-04-01/Accounts/{SID}.json"
    twilio.script(
        Reply(200, {"sid": SID, "friendly_name": "Acme", "status": "active"}),
        path=f"/2010-04-01/Accounts/{SID}.json",
    )
    twilio.script(
        Reply(200, {"incoming_phone_numbers": [], "next_page_uri": None, "page": 0, "page_size": 1}),
        path=f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json",
    )
    result = channel_connection_check(channel=channel)
    assert not result.ok and "it has no number +34600112233" in result.message


def test_x_keys_are_checked_with_users_me(x_api):
    channel = ChannelFactory(
        kind="twitter",
        credentials={
            "consumer_key": "ck",
            "consumer_secret": "cs",
            "access_token": "at",
            "access_token_secret": "ats",
            "user_id": "42",
        },
    )
    x_api.script(Reply(200, {"data": {"id": "42", "username": "acme"}}))
    result = channel_connection_check(channel=channel)
    assert result.ok and result.message == "X knows these keys: @acme (42)."
    assert x_api.requests[-1].headers["authorization"].startswith("OAuth ")


def test_smtp_login_is_tried_for_real():
    server = SmtpServer().start()
    try:
        channel = email_channel(smtp_port=server.port, imap_host="")
        result = channel_connection_check(channel=channel)
        assert result.ok and result.message == "SMTP login to 127.0.0.1 works."
        channel.credentials = {**channel.credentials, "smtp_password": SMTP_PASSWORD + "-wrong"}
        result = channel_connection_check(channel=channel)
        assert not result.ok and "refused the login for “smtp-user”" in result.message
    finally:
        server.stop()


@pytest.mark.skipif(not os.path.exists(DOVECOT), reason="dovecot is not installed (.ci/run installs it)")
def test_imap_login_and_folder_are_tried_for_real():
    server = DovecotServer().start()
    try:
        channel = email_channel(imap_port=server.port, smtp_host="")
        result = channel_connection_check(channel=channel)
        assert result.ok and result.message == "IMAP login to 127.0.0.1 works."
        channel.credentials = {**channel.credentials, "imap_folder": "Nowhere"}
        result = channel_connection_check(channel=channel)
        assert not result.ok and "there is no folder “Nowhere”" in result.message
        channel.credentials = {**channel.credentials, "imap_password": "wrong"}
        result = channel_connection_check(channel=channel)
        assert not result.ok and "refused the login for 'support'" in result.message
    finally:
        server.stop()


def test_a_website_chat_has_nothing_to_call():
    channel = ChannelFactory(kind="webchat", credentials={"identity_secret": "x" * 40})
    assert channel_connection_check(channel=channel).ok
