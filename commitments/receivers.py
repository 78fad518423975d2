"""The commitments app listens to the core (it is never imported by it)."""

from django.db.models import OuterRef, Subquery
from django.db.models.signals import pre_delete

from commitments.models import Commitment


def _message_field(field: str) -> Subquery:
    from conversations.models import Message

    return Subquery(Message.objects.filter(pk=OuterRef("message_id")).values(field)[:1])


def on_customer_deleted(sender, instance, **kwargs):
    # A merge moves the merged customer's messages to the survivor, then deletes the
    # merged customer: its promises follow their messages instead of going with it.
    # A customer deleted with their thread (erasure) still takes theirs.
    Commitment.objects.filter(customer_id=instance.pk).exclude(
        message__thread__customer_id=instance.pk
    ).update(customer_id=_message_field("thread__customer_id"))


def on_case_deleted(sender, instance, **kwargs):
    # A case folded into another by a merge: its messages were moved first.
    Commitment.objects.filter(case_id=instance.pk).exclude(message__case_id=instance.pk).update(
        case_id=_message_field("case_id")
    )


def connect():
    from commitments.privacy import commitment_erase, commitment_export_sections
    from conversations.models import Case
    from customers.models import Customer
    from privacy.signals import customer_erasing, customer_export_sections

    customer_export_sections.connect(commitment_export_sections, dispatch_uid="commitments.export")
    customer_erasing.connect(commitment_erase, dispatch_uid="commitments.erase")
    pre_delete.connect(on_customer_deleted, sender=Customer, dispatch_uid="commitments.customer_deleted")
    pre_delete.connect(on_case_deleted, sender=Case, dispatch_uid="commitments.case_deleted")
