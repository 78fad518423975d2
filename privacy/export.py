"""GDPR articles 15 and 20: everything we hold about one customer, as a zip of JSON and files.

customer.json holds the profile, identities, cases, every message and internal
note the exporting user may read (conversations.visibility decides, as
everywhere; supervisors and admins read everything), survey answers, and the
sections other apps add (privacy.signals.customer_export_sections: consents...).
files/ holds the attachments we store. System lines (assignments, merges) are
our bookkeeping, not the customer's data, and stay out.
"""

from __future__ import annotations

import json
import tempfile
import zipfile

from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from audit.models import AuditAction
from audit.services import audit_record
from customers.models import Customer
from privacy.signals import customer_export_sections

FORMAT_VERSION = 1


def customer_export_data(*, customer: Customer, user) -> tuple[dict, list[tuple[str, str]]]:
    """(the JSON document, [(path in the archive, path in storage)])."""
    from conversations.models import Case, Message, MessageKind
    from conversations.visibility import messages_visible_to
    from kpis.models import SurveyAnswer

    files = []
    messages = []
    visible = messages_visible_to(
        user=user, messages=Message.objects.filter(thread__customer=customer).exclude(kind=MessageKind.SYSTEM)
    ).select_related("channel", "identity")
    for message in visible.order_by("created_at", "pk"):
        attachments = []
        for index, attachment in enumerate(message.attachments or []):
            if not isinstance(attachment, dict):
                continue
            entry = {k: attachment.get(k) for k in ("name", "content_type", "size")}
            if attachment.get("path"):
                name = get_valid_filename(attachment.get("name") or "file")[:80] or "file"
                entry["file"] = f"files/{message.pk}-{index}-{name}"
                files.append((entry["file"], attachment["path"]))
            attachments.append(entry)
        messages.append(
            {
                "id": message.pk,
                "case": message.case_id,
                "created_at": message.created_at,
                "direction": message.direction,
                "kind": message.kind,
                "internal_note": message.kind == MessageKind.NOTE,
                "author": message.author,
                "channel": message.channel.kind if message.channel else None,
                "address": (
                    {"kind": message.identity.kind, "address": message.identity.address}
                    if message.identity
                    else None
                ),
                "body": message.body,
                "attachments": attachments,
                "status": message.status,
                "imported": bool((message.meta or {}).get("imported")),
            }
        )
    cases = list(
        Case.objects.filter(thread__customer=customer)
        .order_by("opened_at")
        .values(
            "id", "status", "subject", "opened_at", "first_response_at", "resolved_at", "origin_channel__kind"
        )
    )
    surveys = list(
        SurveyAnswer.objects.filter(customer=customer)
        .order_by("answered_at")
        .values("kind", "score", "case_id", "via", "answered_at")
    )
    document = {
        "format": "helpdesk-customer-export",
        "version": FORMAT_VERSION,
        "exported_at": timezone.now(),
        "customer": {
            "id": customer.pk,
            "name": customer.name,
            "attributes": customer.attributes,
            "created_at": customer.created_at,
            "legal_hold": customer.legal_hold,
        },
        "identities": list(
            customer.identities.order_by("pk").values("kind", "address", "display_name", "created_at")
        ),
        "cases": cases,
        "messages": messages,
        "survey_answers": surveys,
    }
    for _receiver, section in customer_export_sections.send(sender=None, customer=customer):
        if isinstance(section, dict):
            document.update(section)
    return document, files


def customer_export_archive(*, customer: Customer, user, request=None):
    """A temporary file holding the zip, at position 0; the export is audited."""
    document, files = customer_export_data(customer=customer, user=user)
    # Handed to the response, which closes it once sent.
    archive = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115
    missing = []
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, path in files:
            try:
                with default_storage.open(path, "rb") as fh:
                    zf.writestr(name, fh.read())
            except OSError:
                missing.append(name)
        document["missing_files"] = missing
        zf.writestr(
            "customer.json", json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
        )
    with transaction.atomic():
        audit_record(
            action=AuditAction.CUSTOMER_EXPORTED,
            actor=user,
            target=customer,
            request=request,
            details={"messages": len(document["messages"]), "files": len(files) - len(missing)},
        )
    archive.seek(0)
    return archive
