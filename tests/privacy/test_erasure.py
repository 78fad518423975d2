from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from channels_adapters.base import Sender
from commitments.services import commitment_create
from conversations.cases import case_note_add, set_case_status
from conversations.models import Case, Message
from conversations.services import receive_inbound, send_reply
from customers.models import Customer, CustomerMerge, Identity
from customers.services import identity_add, merge_customers
from integrations.models import Event, WebhookDelivery, WebhookSubscription
from kpis.models import SurveyAnswer, SurveyRequest
from kpis.selectors import kpi_report
from outreach.models import Consent, Outreach
from privacy.erasure import customer_erase, customer_legal_hold_set
from tests.channels_adapters.email_support import email_channel, raw_headers
from tests.factories import ChannelFactory, provider_accepts
from tests.privacy.scan import tables_holding
from tests.webhooks import check_webhook, fixture_bytes

pytestmark = pytest.mark.django_db

ANA_VALUES = [
    "Ana Silva",
    "ana.silva@example.com",
    "Ana.Silva@Example.com",
    "+34600111222",
    "ana.other@example.org",
    "order #4411 has not arrived",
    "Refund for the blue kettle",
    "my IBAN is ES9121000418450200051332",
    "we called her back about the kettle",
    "kettle-receipt.pdf",
    "RECEIPT-BYTES-OF-ANA",
    "Kettle warranty question",
    "loyalty-tier-platinum",
]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _mail() -> bytes:
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = "Ana Silva <ana.silva@example.com>"
    mail["To"] = "support@acme.test"
    mail["Subject"] = "Refund for the blue kettle"
    mail["Date"] = "Wed, 25 Nov 2026 09:00:00 +0000"
    mail["Message-ID"] = "<kettle-1@mail.example.com>"
    mail.set_content("Hello, my IBAN is ES9121000418450200051332")
    mail.add_alternative("<p>Hello, my IBAN is ES9121000418450200051332</p>", subtype="html")
    mail.add_attachment(
        b"RECEIPT-BYTES-OF-ANA", maintype="application", subtype="pdf", filename="kettle-receipt.pdf"
    )
    return mail.as_bytes()


def _ana(client, agent):
    """Ana writes on the API channel and by email, is answered, noted, surveyed, merged with
    her second address; everything goes through the real paths (webhooks, services)."""
    WebhookSubscription.objects.create(url="http://127.0.0.1:9/hook", events=list(Event.values))
    api = ChannelFactory(credentials={"secret": "api-secret", "callback_url": "http://x"})
    body = fixture_bytes("api", "message.json")
    from channels_adapters.base import hmac_sha256_hex

    check_webhook(client, api, body, headers={"X-Signature": "sha256=" + hmac_sha256_hex("api-secret", body)})
    ana = Customer.objects.get(identities__address="ana.silva@example.com")
    identity_add(customer=ana, kind="phone", address="+34 600 111 222")
    case = Case.objects.get(thread__customer=ana)
    provider_accepts(send_reply(case=case, author_user=agent, body="Sorry Ana Silva, checking order #4411"))
    case_note_add(case=case, author_user=agent, body="we called her back about the kettle")
    set_case_status(case=case, status="resolved", by=agent)

    mail = email_channel()
    raw = _mail()
    check_webhook(client, mail, raw, headers=raw_headers(mail, raw), content_type="message/rfc822")
    email_case = Case.objects.get(thread__customer=ana, status="open")
    request = SurveyRequest.objects.create(
        kind="csat",
        case=case,
        customer=ana,
        created_at=timezone.now(),
        send_after=timezone.now(),
        status="answered",
    )
    SurveyAnswer.objects.create(
        request=request, kind="csat", score=4, case=case, customer=ana, via="link", answered_at=timezone.now()
    )
    other = receive_inbound(
        channel=api,
        sender=Sender("email", "ana.other@example.org", "Ana Silva"),
        external_id="x-2",
        text="hi",
    ).message.thread.customer
    other.attributes = {"tier": "loyalty-tier-platinum"}
    other.save()
    set_case_status(case=Case.objects.get(thread__customer=other), status="resolved", by=agent)
    merge_customers(survivor=ana, merged=other, merged_by=agent)
    # Other apps' rows about her: a promise quoting her order, an outreach, her consent.
    reply = Message.objects.filter(thread__customer=ana, author="agent").first()
    commitment_create(
        message=reply, text="Ana Silva gets a new kettle for order #4411 has not arrived", by=agent
    )
    Outreach.objects.create(
        customer=ana,
        source="api",
        body="Ana Silva, your Refund for the blue kettle is on its way",
        created_at=timezone.now(),
    )
    Consent.objects.create(
        customer=ana,
        channel_kind="sms",
        status="opted_out",
        source="keyword",
        evidence="STOP from +34600111222",
        updated_at=timezone.now(),
    )
    return Customer.objects.get(pk=ana.pk), api, email_case


def _kpis():
    today = timezone.localdate()
    report = kpi_report(start=today - timedelta(days=1), end=today + timedelta(days=1), use_rollups=False)
    return report["totals"], report["by_channel"]


def test_erasure_leaves_no_personal_data_anywhere_and_keeps_the_kpis(
    client, agent, media, django_capture_on_commit_callbacks
):
    ana, api, email_case = _ana(client, agent)
    bob = receive_inbound(
        channel=api,
        sender=Sender("email", "bob@example.net", "Bob Stone"),
        external_id="b-1",
        text="Bob's own question",
    ).message.thread.customer
    found = tables_holding(ANA_VALUES)
    # The data really is spread over the tables the erasure must reach.
    for column in (
        "customers_customer.name",
        "customers_identity.address",
        "conversations_message.body",
        "conversations_message.html",
        "conversations_message.attachments",
        "conversations_case.subject",
        "channels_adapters_inboundevent.body",
        "integrations_webhookdelivery.payload",
        "customers_customermerge.merged_snapshot",
        "commitments_commitment.text",
        "outreach_outreach.body",
        "outreach_consent.evidence",
    ):
        assert column in found, column
    files = [p for p in Path(media).rglob("*") if p.is_file()]
    assert any(p.read_bytes().find(b"RECEIPT-BYTES-OF-ANA") >= 0 for p in files)
    kpis_before = _kpis()
    messages_before = Message.objects.filter(thread__customer=ana).count()

    with django_capture_on_commit_callbacks(execute=True):
        counts = customer_erase(customer=ana, user=agent)

    assert tables_holding(ANA_VALUES) == {}
    assert not [p for p in Path(media).rglob("*") if p.is_file() and b"ANA" in p.read_bytes()]
    assert _kpis() == kpis_before
    assert Message.objects.filter(thread__customer=ana).count() == messages_before
    assert counts["identities"] == 3 and counts["files"] >= 2 and counts["inbound_events"] >= 2
    ana.refresh_from_db()
    assert ana.erased_at is not None and ana.name == ""
    # Nobody else lost anything.
    assert Customer.objects.get(pk=bob.pk).name == "Bob Stone"
    assert Message.objects.get(thread__customer=bob).body == "Bob's own question"
    assert WebhookDelivery.objects.filter(ordering_key=f"customer:{bob.pk}").exclude(payload={"erased": True})
    entry = AuditEntry.objects.get(action=AuditAction.CUSTOMER_ERASED)
    assert entry.actor == agent and entry.target_id == str(ana.pk) and entry.details == counts
    assert CustomerMerge.objects.get().merged_snapshot == {"erased": True}

    # The same person writing again is a new customer, on a new thread.
    again = receive_inbound(
        channel=api,
        sender=Sender("email", "ana.silva@example.com", "Ana Silva"),
        external_id="n-1",
        text="hi again",
    )
    assert again.message.thread.customer_id not in (ana.pk, bob.pk)
    assert (
        Identity.objects.get(address="ana.silva@example.com").customer_id == again.message.thread.customer_id
    )


def test_erasure_is_refused_under_legal_hold_with_the_reason(client, agent, media):
    ana, _api, _case = _ana(client, agent)
    customer_legal_hold_set(customer=ana, hold=True, reason="Court order 55/2026", user=agent)

    with pytest.raises(ValidationError, match="Court order 55/2026"):
        customer_erase(customer=ana, user=agent)

    ana.refresh_from_db()
    assert ana.name == "Ana Silva" and ana.erased_at is None
    assert Message.objects.filter(thread__customer=ana, body__contains="order #4411").exists()
    refused = AuditEntry.objects.get(action=AuditAction.ERASURE_REFUSED)
    assert refused.actor == agent and refused.details == {"reason": "legal_hold"}
    assert AuditEntry.objects.get(action=AuditAction.LEGAL_HOLD_CHANGED).details["hold"] is True


def test_a_legal_hold_needs_a_reason(agent):
    from tests.factories import CustomerFactory

    with pytest.raises(ValidationError):
        customer_legal_hold_set(customer=CustomerFactory(), hold=True, reason="  ", user=agent)
