"""Undoing a recorded merge: everything that moved goes back where it came from.

customers.services.merge_customers keeps, in CustomerMerge.merged_snapshot, the
ids of what it moved and (customers/snapshots.py) what its deletes removed; this
puts the merged customer, their thread, their identities, messages, cases and
survey answers back, un-folds a folded case, and gives the survivor back the
name, attributes and labels it had. What arrived after the merge stays with the
survivor: it was never the merged customer's.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record
from customers.models import Customer, CustomerMerge, Identity
from customers.snapshots import deletion_restore


def _at(value):
    return parse_datetime(value) if value else None


def customer_unmerge(*, merge: CustomerMerge, user=None, request=None) -> Customer:
    from conversations.models import Case, Message, MessageKind, Thread
    from conversations.visibility import customer_visible
    from kpis.models import SurveyAnswer, SurveyRequest
    from kpis.services import kpi_rollups_invalidate

    snapshot = merge.merged_snapshot or {}
    if merge.unmerged_at is not None:
        raise ValidationError(_("This merge was already undone."))
    if "deleted" not in snapshot:
        raise ValidationError(
            _("This merge was recorded before merges could be undone; it cannot be undone.")
        )
    if user is not None and not customer_visible(user=user, customer=merge.survivor):
        raise ValidationError(_("You may only undo merges of customers you can see."))
    if merge.survivor.erased_at is not None:
        raise ValidationError(_("The customer was erased since; there is nothing to give back."))
    if Customer.objects.filter(pk=merge.merged_customer_id).exists():
        raise ValidationError(
            _("Customer #%(id)s exists again; undo this merge by hand.") % {"id": merge.merged_customer_id}
        )

    with transaction.atomic():
        merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
        survivor = Customer.objects.select_for_update().get(pk=merge.survivor_id)
        keep = Thread.objects.select_for_update().get(customer=survivor)
        deletion_restore(snapshot["deleted"])
        merged = Customer.objects.get(pk=merge.merged_customer_id)
        gone = Thread.objects.get(customer=merged)

        folded = snapshot.get("folded")
        days = set()
        if folded:
            kept = folded["kept_case"]
            deletion_restore(folded["deleted"])
            Message.objects.filter(pk__in=folded["message_ids"], case_id=kept["id"]).update(
                case_id=folded["case_id"]
            )
            SurveyRequest.objects.filter(pk__in=folded["survey_request_ids"]).update(
                case_id=folded["case_id"]
            )
            SurveyAnswer.objects.filter(pk__in=folded["survey_answer_ids"]).update(case_id=folded["case_id"])
            kept_case = Case.objects.filter(pk=kept["id"]).first()
            if kept_case is not None:
                days.add(timezone.localdate(kept_case.opened_at))
                for field in ("opened_at", "first_response_at", "waiting_since", "last_wait_started_at"):
                    setattr(kept_case, field, _at(kept[field]))
                kept_case.save(
                    update_fields=["opened_at", "first_response_at", "waiting_since", "last_wait_started_at"]
                )
                kept_case.labels.set(kept["label_ids"])
                days.add(timezone.localdate(kept_case.opened_at))
            folded_case = Case.objects.get(pk=folded["case_id"])
            days.add(timezone.localdate(folded_case.opened_at))
            days |= {
                timezone.localdate(t)
                for t in Message.objects.filter(case=folded_case).values_list("created_at", flat=True)
            }

        identities = Identity.objects.filter(pk__in=snapshot["identity_ids"], customer=survivor).update(
            customer=merged
        )
        messages = Message.objects.filter(pk__in=snapshot["message_ids"], thread=keep).update(thread=gone)
        cases = Case.objects.filter(pk__in=snapshot["case_ids"], thread=keep).update(thread=gone)
        SurveyRequest.objects.filter(pk__in=snapshot["survey_request_ids"]).update(customer=merged)
        SurveyAnswer.objects.filter(pk__in=snapshot["survey_answer_ids"]).update(customer=merged)
        if snapshot.get("system_event_id"):
            Message.objects.filter(pk=snapshot["system_event_id"], thread=keep).delete()

        keep.last_message_at = _at(snapshot.get("survivor_thread_last_message_at"))
        # What the customer wrote or was told after the merge moves it on, as it did then.
        latest = (
            Message.objects.filter(thread=keep, created_at__gt=merge.merged_at)
            .exclude(kind__in=(MessageKind.SYSTEM, MessageKind.NOTE))
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if latest and (keep.last_message_at is None or latest > keep.last_message_at):
            keep.last_message_at = latest
        keep.save(update_fields=["last_message_at"])
        survivor.name = snapshot["survivor"]["name"]
        survivor.attributes = snapshot["survivor"]["attributes"]
        survivor.save(update_fields=["name", "attributes"])

        merge.unmerged_at = timezone.now()
        merge.unmerged_by = user if user is not None and user.pk else None
        merge.save(update_fields=["unmerged_at", "unmerged_by"])
        audit_record(
            action=AuditAction.CUSTOMER_UNMERGED,
            actor=user,
            target=survivor,
            request=request,
            details={
                "merge_id": merge.pk,
                "restored_customer_id": merged.pk,
                "identities": identities,
                "messages": messages,
                "cases": cases,
                "folded_case": folded["case_id"] if folded else None,
            },
        )
        if days:
            transaction.on_commit(lambda: kpi_rollups_invalidate(days=days))
    return merged
