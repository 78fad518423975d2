"""GDPR article 17: erasing a customer while the KPIs keep their counts and times.

The customer, their thread and their cases stay (so every count, first response,
resolution and survey score stays in the KPIs, live and rolled up); what goes is
the content: name, attributes, identities, message bodies, HTML, attachments and
their files, email originals, the raw webhooks that carried their messages and
the outbound webhook payloads about them. Identities are deleted, so the same
person writing again is a stranger: a new customer.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, quote_plus

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record
from customers.models import Customer, CustomerMerge, Identity
from privacy.signals import customer_erasing

logger = logging.getLogger(__name__)

# Message meta the KPIs (calls: answered, talk time) and the core's bookkeeping read;
# everything else in meta is content (subjects, contacts, locations, transcripts, paths).
KPI_META_KEYS = (
    "answered",
    "call_status",
    "direction",
    "talk_seconds",
    "recording_seconds",
    "echo",
    "imported",
)


def _stored_paths(message) -> list[str]:
    paths = [a["path"] for a in (message.attachments or []) if isinstance(a, dict) and a.get("path")]
    paths += [v for k, v in (message.meta or {}).items() if k.endswith("_path") and isinstance(v, str)]
    return paths


def _needles(addresses: list[str], external_ids: list[str]) -> list[bytes]:
    """What a raw webhook body of theirs contains: an address (as JSON or form-encoded
    writes it) or the provider's id of one of their messages."""
    found = set()
    for value in addresses:
        for form in {value, quote_plus(value), quote(value, safe="")}:
            if len(form) >= 4:
                found.add(form.encode())
    for value in external_ids:
        if value and len(value) >= 6:
            found.add(value.encode())
    return sorted(found)


def _inbound_events_matching(channel_ids: set[int], needles: list[bytes]) -> list[int]:
    from channels_adapters.models import InboundEvent

    if not needles or not channel_ids:
        return []
    table = InboundEvent._meta.db_table
    ids = set()
    contains = (
        "position(%s::bytea in body) > 0" if connection.vendor == "postgresql" else "instr(body, %s) > 0"
    )
    placeholders = ", ".join(["%s"] * len(channel_ids))
    with connection.cursor() as cursor:
        # A few hundred needles at a time: one scan of the channel's events per batch.
        for start in range(0, len(needles), 200):
            batch = needles[start : start + 200]
            where = " OR ".join([contains] * len(batch))
            cursor.execute(
                f"SELECT id FROM {table} WHERE channel_id IN ({placeholders}) AND ({where})",
                [*sorted(channel_ids), *batch],
            )
            ids |= {row[0] for row in cursor.fetchall()}
    return sorted(ids)


def customer_erase(*, customer: Customer, user=None, request=None) -> dict:
    """Anonymize a customer; refused (and audited) under legal hold. Returns the counts."""
    from channels_adapters.models import InboundEvent
    from conversations.models import Case, DeliveryAttempt, Message, Thread
    from integrations.models import WebhookAttempt, WebhookDelivery
    from kpis.models import SurveyRequest

    customer = Customer.objects.get(pk=customer.pk)
    if customer.legal_hold:
        audit_record(
            action=AuditAction.ERASURE_REFUSED,
            actor=user,
            target=customer,
            request=request,
            details={"reason": "legal_hold"},
        )
        raise ValidationError(
            _("This customer is under legal hold and cannot be erased: %(reason)s")
            % {"reason": customer.legal_hold_reason or _("no reason given")}
        )
    if customer.erased_at is not None:
        raise ValidationError(_("This customer was already erased."))

    files: list[str] = []
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        thread = Thread.objects.select_for_update().get(customer=customer)
        addresses = list(Identity.objects.filter(customer=customer).values_list("address", flat=True))
        messages = Message.objects.filter(thread=thread)
        channel_ids = set(messages.exclude(channel=None).values_list("channel_id", flat=True).distinct())
        external_ids = list(messages.exclude(external_id=None).values_list("external_id", flat=True))
        message_count = 0
        for message in messages.only("pk", "attachments", "meta").iterator(chunk_size=500):
            files += _stored_paths(message)
            meta = {k: v for k, v in (message.meta or {}).items() if k in KPI_META_KEYS}
            meta["erased"] = True
            Message.objects.filter(pk=message.pk).update(
                body="", html="", attachments=[], error="", meta=meta
            )
            message_count += 1
        DeliveryAttempt.objects.filter(message__thread=thread).update(error="")
        cases = list(Case.objects.filter(thread=thread).values_list("pk", flat=True))
        Case.objects.filter(thread=thread).update(subject="")
        SurveyRequest.objects.filter(customer=customer).update(error="")

        events = _inbound_events_matching(channel_ids, _needles(addresses, external_ids))
        InboundEvent.objects.filter(pk__in=events).update(
            body=b"", headers={}, query_string="", error="", summary={"erased": True}
        )

        merged_ids = list(
            CustomerMerge.objects.filter(survivor=customer).values_list("merged_customer_id", flat=True)
        )
        CustomerMerge.objects.filter(survivor=customer).update(merged_snapshot={"erased": True})
        keys = [f"customer:{pk}" for pk in [customer.pk, *merged_ids]]
        keys += [f"thread:{thread.pk}", *(f"case:{pk}" for pk in cases)]
        deliveries = WebhookDelivery.objects.filter(ordering_key__in=keys)
        WebhookAttempt.objects.filter(delivery__in=deliveries).update(response_excerpt="", error="")
        delivery_count = deliveries.update(payload={"erased": True})

        identities = Identity.objects.filter(customer=customer)
        identity_count = identities.count()
        identities.delete()
        customer.name = ""
        customer.attributes = {}
        customer.legal_hold_reason = ""
        customer.erased_at = timezone.now()
        customer._audit_skip = True
        customer.save(update_fields=["name", "attributes", "legal_hold_reason", "erased_at"])
        customer_erasing.send(sender=None, customer=customer, thread=thread)
        counts = {
            "messages": message_count,
            "identities": identity_count,
            "files": len(files),
            "inbound_events": len(events),
            "webhook_deliveries": delivery_count,
        }
        audit_record(
            action=AuditAction.CUSTOMER_ERASED, actor=user, target=customer, request=request, details=counts
        )
        transaction.on_commit(lambda: _files_delete(files))
    return counts


def _files_delete(paths: list[str]) -> None:
    for path in paths:
        try:
            default_storage.delete(path)
        except OSError:
            # The rows no longer point at it; a file left behind is logged for an admin.
            logger.exception("Erasure could not delete stored file %s", path)


def customer_legal_hold_set(
    *, customer: Customer, hold: bool, reason: str = "", user=None, request=None
) -> Customer:
    if hold and not reason.strip():
        raise ValidationError(_("Say why the customer is under legal hold."))
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        customer.legal_hold = hold
        customer.legal_hold_reason = reason.strip() if hold else ""
        customer._audit_skip = True
        customer.save(update_fields=["legal_hold", "legal_hold_reason"])
        # The reason can name a case or an authority, not the customer: kept in the entry.
        audit_record(
            action=AuditAction.LEGAL_HOLD_CHANGED,
            actor=user,
            target=customer,
            request=request,
            details={"hold": hold, "reason": customer.legal_hold_reason},
        )
    return customer
