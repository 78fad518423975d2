"""Replies, notes, retries and delivery status through the API: the inbox's rules and errors."""

import pytest

from conversations.models import DeliveryAttempt, DeliveryStatus, Direction, Mention, Message
from tests.api.conftest import error_of
from tests.channels_adapters.meta_support import customer_wrote, whatsapp_channel
from tests.factories import ChannelFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_reply_is_queued_on_the_customers_channel(api, world, org, django_capture_on_commit_callbacks):
    case = world["billing_case"]
    with django_capture_on_commit_callbacks() as callbacks:
        response = api["ana"].post(f"/api/v1/cases/{case.pk}/replies/", {"body": "Refund sent today."})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["direction"] == "out" and body["author_user"] == org["ana"].pk
    assert body["channel"]["id"] == world["channel"].pk
    assert callbacks, "the send and the push are queued after commit"
    case.refresh_from_db()
    # Queued is not a response yet (issue 18): it counts once the provider accepts it.
    assert case.first_response_at is None


def test_reply_outside_whatsapps_24_hour_window_is_400_with_the_rule(api, org):
    channel = whatsapp_channel()
    inbound = customer_wrote(channel, "phone", "+34612345678", hours_ago=30)
    response = api["ana"].post(f"/api/v1/cases/{inbound.case_id}/replies/", {"body": "Still there?"})
    assert response.status_code == 400
    error = error_of(response)
    assert "more than 24 hours ago" in error["message"] and "approved template" in error["message"]
    assert not Message.objects.filter(direction=Direction.OUT).exists()


def test_a_template_passes_the_closed_window(api, org):
    channel = whatsapp_channel()
    inbound = customer_wrote(channel, "phone", "+34612345678", hours_ago=30)
    template = {"name": "order_update", "language": "es", "parameters": ["Lucía", "#4411"]}
    response = api["ana"].post(f"/api/v1/cases/{inbound.case_id}/replies/", {"template": template})
    assert response.status_code == 201, response.content
    assert Message.objects.get(pk=response.json()["id"]).meta["template"]["name"] == "order_update"


def test_unreachable_customer_is_400_with_the_services_words(api, world):
    sms = ChannelFactory(
        kind="sms",
        name="SMS",
        credentials={"account_sid": "AC1", "auth_token": "t", "phone_number": "+15550001"},
    )
    response = api["bo"].post(
        f"/api/v1/cases/{world['sales_case'].pk}/replies/", {"body": "hi", "channel": sms.pk}
    )
    assert response.status_code == 400
    assert "no address SMS can reach" in error_of(response)["message"]


def test_unknown_or_inactive_channel_is_400(api, world):
    off = ChannelFactory(is_active=False)
    for channel in (off.pk, 999999):
        response = api["ana"].post(
            f"/api/v1/cases/{world['billing_case'].pk}/replies/", {"body": "x", "channel": channel}
        )
        assert response.status_code == 400 and "channel" in error_of(response)["fields"]


def test_empty_reply_is_400(api, world):
    response = api["ana"].post(f"/api/v1/cases/{world['billing_case'].pk}/replies/", {"body": "  "})
    assert response.status_code == 400 and "needs text" in error_of(response)["message"]


def test_note_with_a_mention(api, world, org):
    response = api["boss"].post(
        f"/api/v1/cases/{world['billing_case'].pk}/notes/", {"body": "@ana look at this"}
    )
    assert response.status_code == 201
    assert response.json()["kind"] == "note"
    assert Mention.objects.filter(user=org["ana"], message_id=response.json()["id"]).exists()
    assert (
        api["boss"].post(f"/api/v1/cases/{world['billing_case'].pk}/notes/", {"body": ""}).status_code == 400
    )


def test_delivery_status_with_attempts(api, world):
    failed = world["sales_failed"]
    failed.error = "The number is not on WhatsApp."
    failed.save()
    DeliveryAttempt.objects.create(
        message=failed, number=1, started_at=failed.created_at, outcome="failed", error="x"
    )
    body = api["bo"].get(f"/api/v1/messages/{failed.pk}/").json()
    assert body["status"] == "failed" and body["error"] == "The number is not on WhatsApp."
    assert [a["number"] for a in body["delivery_attempts"]] == [1]


def test_retry_a_failed_message(api, world, django_capture_on_commit_callbacks):
    failed = world["sales_failed"]
    with django_capture_on_commit_callbacks() as callbacks:
        response = api["bo"].post(f"/api/v1/messages/{failed.pk}/retry/", {})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "queued" and callbacks
    again = api["bo"].post(f"/api/v1/messages/{failed.pk}/retry/", {})
    assert again.status_code == 400 and "Only a failed message" in error_of(again)["message"]


def test_retry_of_a_send_that_may_have_arrived_needs_confirmation(api, world):
    message = world["sales_failed"]
    message.status = DeliveryStatus.UNKNOWN
    message.save()
    refused = api["bo"].post(f"/api/v1/messages/{message.pk}/retry/", {})
    assert refused.status_code == 400 and "Confirm" in error_of(refused)["message"]
    assert api["bo"].post(f"/api/v1/messages/{message.pk}/retry/", {"confirmed": True}).status_code == 200


def test_history_of_another_team_can_be_read_but_not_retried(api, world, org):
    """Sol also writes to Billing: ana may read Sales' reply as history, not send it again."""
    from tests.factories import CaseFactory

    world["sales_case"].status = "resolved"
    world["sales_case"].save()
    billing = CaseFactory(thread=world["sol"].thread, team=org["billing"], origin_channel=world["channel"])
    MessageFactory(case=billing, channel=world["channel"], body="Me again")
    failed = world["sales_failed"]
    assert api["ana"].get(f"/api/v1/messages/{failed.pk}/").status_code == 200
    assert api["ana"].post(f"/api/v1/messages/{failed.pk}/retry/", {}).status_code == 404


def test_a_token_downloads_the_files_it_may_see_and_nothing_else(api, org, world, settings, tmp_path):
    from conversations.attachments import attachment_save

    settings.MEDIA_ROOT = str(tmp_path)
    message = world["sol_in"]
    message.attachments = [
        attachment_save(content=b"%PDF-1.4 quote", name="quote.pdf", content_type="application/pdf")
    ]
    message.save(update_fields=["attachments"])
    read = api["bo"].get(f"/api/v1/messages/{message.pk}/").json()
    [link] = read["attachments"]
    assert link["url"] == f"/api/v1/messages/{message.pk}/attachments/0/" and link["name"] == "quote.pdf"
    download = api["bo"].get(link["url"])
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"%PDF-1.4 quote"
    assert download["Content-Disposition"].startswith("attachment")
    assert download["X-Content-Type-Options"] == "nosniff"
    # Billing's agent may not see Sales' case: the file is as hidden as the message.
    assert error_of(api["ana"].get(link["url"]))["code"] == "not_found"
    assert api["bo"].get(f"/api/v1/messages/{message.pk}/attachments/1/").status_code == 404
