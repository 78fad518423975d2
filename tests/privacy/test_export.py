import io
import json
import zipfile

import pytest
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from channels_adapters.base import Sender
from commitments.services import commitment_create
from conversations.attachments import attachment_save
from conversations.cases import case_note_add, set_case_status
from conversations.services import receive_inbound, send_reply
from customers.services import identity_add
from kpis.models import SurveyAnswer, SurveyRequest
from outreach.models import Consent
from tests.api.conftest import client_for
from tests.factories import ChannelFactory, CustomerFactory, provider_accepts

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def dee(org, media):
    channel = ChannelFactory()
    photo = attachment_save(content=b"\x89PNG-dee-photo", name="broken lamp.png", content_type="image/png")
    first = receive_inbound(
        channel=channel,
        sender=Sender("email", "dee@example.com", "Dee Novak"),
        external_id="d-1",
        text="My lamp arrived broken",
        attachments=[photo],
    )
    case = first.message.case
    customer = first.message.thread.customer
    identity_add(customer=customer, kind="phone", address="+1 415 555 0199")
    provider_accepts(send_reply(case=case, author_user=org["ana"], body="Sorry Dee, a new one is on its way"))
    case_note_add(case=case, author_user=org["ana"], body="Replacement approved by Bo")
    set_case_status(case=case, status="resolved", by=org["ana"])
    reply = customer.thread.messages.get(body="Sorry Dee, a new one is on its way")
    commitment_create(message=reply, text="New lamp ships Monday", by=org["ana"])
    Consent.objects.create(
        customer=customer,
        channel_kind="sms",
        status="opted_out",
        source="keyword",
        evidence="STOP",
        updated_at=timezone.now(),
    )
    request = SurveyRequest.objects.create(
        kind="csat",
        case=case,
        customer=customer,
        created_at=timezone.now(),
        send_after=timezone.now(),
        status="answered",
    )
    SurveyAnswer.objects.create(
        request=request,
        kind="csat",
        score=5,
        case=case,
        customer=customer,
        via="link",
        answered_at=timezone.now(),
    )
    return customer


def test_the_archive_holds_everything_about_the_customer(org, dee, django_assert_max_num_queries):
    api = client_for(org["boss"])
    with django_assert_max_num_queries(20):
        response = api.get(f"/api/v1/customers/{dee.pk}/export/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f"customer-{dee.pk}.zip" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    document = json.loads(archive.read("customer.json"))
    assert document["customer"]["name"] == "Dee Novak"
    assert {(i["kind"], i["address"]) for i in document["identities"]} == {
        ("email", "dee@example.com"),
        ("phone", "+14155550199"),
    }
    bodies = [(m["direction"], m["kind"], m["body"]) for m in document["messages"]]
    assert bodies == [
        ("in", "text", "My lamp arrived broken"),
        ("out", "text", "Sorry Dee, a new one is on its way"),
        ("out", "note", "Replacement approved by Bo"),
    ]
    assert [m["internal_note"] for m in document["messages"]] == [False, False, True]
    # System lines (resolved by...) are our bookkeeping, not theirs.
    assert all(m["kind"] != "system" for m in document["messages"])
    [attachment] = document["messages"][0]["attachments"]
    assert archive.read(attachment["file"]) == b"\x89PNG-dee-photo"
    assert document["cases"][0]["status"] == "resolved"
    assert [(s["kind"], s["score"]) for s in document["survey_answers"]] == [("csat", 5)]
    # Other apps' parts: the promise made to her, and her no to text messages.
    assert [(c["text"], c["status"]) for c in document["commitments"]] == [("New lamp ships Monday", "open")]
    assert [(c["channel_kind"], c["status"], c["evidence"]) for c in document["consents"]] == [
        ("sms", "opted_out", "STOP")
    ]
    assert document["outreach"] == []
    entry = AuditEntry.objects.get(action=AuditAction.CUSTOMER_EXPORTED)
    assert entry.actor == org["boss"] and entry.target_id == str(dee.pk) and entry.details["files"] == 1


def test_only_supervisors_and_admins_export_and_errors_keep_the_api_shape(org, dee):
    refused = client_for(org["ana"]).get(f"/api/v1/customers/{dee.pk}/export/")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    missing = client_for(org["boss"]).get("/api/v1/customers/999999/export/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert not AuditEntry.objects.filter(action=AuditAction.CUSTOMER_EXPORTED).exists()


def test_the_export_is_in_the_openapi_schema(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/customers/{id}/export/"]["get"]
    assert "application/zip" in operation["responses"]["200"]["content"]


def test_a_customer_without_messages_exports_too(org, media):
    customer = CustomerFactory(name="Quiet Person")
    response = client_for(org["boss"]).get(f"/api/v1/customers/{customer.pk}/export/")
    document = json.loads(
        zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).read("customer.json")
    )
    assert document["messages"] == [] and document["customer"]["name"] == "Quiet Person"
