from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.identity import identity_normalize
from customers.models import Customer, CustomerMerge, Identity
from customers.snapshots import deletion_snapshot


def customer_create(*, name: str = "", attributes: dict | None = None, savepoint: bool = True) -> Customer:
    """A customer always comes with their one thread.

    `savepoint=False`: the caller's transaction fails as a whole if this does
    (a drain batch's first contact, which saves the two round trips).
    """
    from conversations import signals
    from conversations.models import Thread

    with transaction.atomic(savepoint=savepoint):
        customer = Customer.objects.create(name=name, attributes=attributes or {})
        Thread.objects.create(customer=customer)
        signals.domain_event_emit(
            "customer.created", {"customer": _customer_data(customer)}, f"customer:{customer.pk}"
        )
    return customer


def _customer_data(customer: Customer) -> dict:
    return {
        "id": customer.pk,
        "name": customer.name,
        "attributes": customer.attributes,
        "created_at": customer.created_at.isoformat() if customer.created_at else None,
    }


def identity_resolve(*, kind: str, address: str, name: str = "") -> Identity:
    """The identity for an address, creating customer and thread on first contact.

    Safe under concurrency: two first messages from the same new address race
    on the (kind, address) constraint, the loser reads the winner's row.
    Call it inside the transaction that writes what the identity is for, so a
    failure there leaves no customer behind.
    """
    return identity_resolve_or_create(kind=kind, address=address, name=name)[0]


def identity_resolve_or_create(
    *, kind: str, address: str, name: str = "", known: Identity | None = None, absent: str | None = None
) -> tuple[Identity, bool]:
    """identity_resolve, and whether this call created the customer (who then has no cases yet).

    What a drain batch read already (customers.selectors.identities_for_senders):
    `known`, the identity at the address; `absent`, the normalized address
    nobody had when the batch looked. Someone who got it since is found by the
    constraint, as a concurrent first contact is.
    """
    name = (name or "")[: Customer._meta.get_field("name").max_length]
    if known is not None:
        return _identity_named(known, name), False
    address = absent or identity_normalize(kind, address)
    if len(address) > Identity._meta.get_field("address").max_length:
        # A column error would fail the same way on every retry; say what is wrong.
        raise ValidationError(
            _("A %(length)s-character %(kind)s address is not anyone's address.")
            % {"length": f"{len(address):,}", "kind": kind}
        )
    # The full name, if longer, is the caller's to keep (the inbound path keeps it in meta).
    # (kind, address) is unique: no ORDER BY to build and run (.first() would add one);
    # this runs for every inbound message.
    if absent is None:
        found = Identity.objects.select_related("customer").filter(kind=kind, address=address).order_by()[:1]
        identity = next(iter(found), None)
        if identity is not None:
            return _identity_named(identity, name), False
    else:
        # A drain batch's first contact, in its message's transaction: no savepoints
        # (four round trips of ≈11). Someone who took the address since makes
        # the constraint fail the whole transaction, which the caller writes
        # again looking the address up (conversations.services.receive_inbound).
        customer = customer_create(name=name, savepoint=False)
        identity = Identity.objects.create(customer=customer, kind=kind, address=address, display_name=name)
        identity.customer = customer
        return identity, True
    try:
        with transaction.atomic():
            customer = customer_create(name=name)
            identity = Identity.objects.create(
                customer=customer, kind=kind, address=address, display_name=name
            )
            identity.customer = customer
            return identity, True
    except IntegrityError:
        identity = Identity.objects.select_related("customer").get(kind=kind, address=address)
        return _identity_named(identity, name), False


def _identity_named(identity: Identity, name: str) -> Identity:
    # A customer first seen without a name (an email's bare address) takes the first one given.
    if name and not identity.customer.name:
        Customer.objects.filter(pk=identity.customer_id, name="").update(name=name)
        identity.customer.name = name
    return identity


def identity_add(*, customer: Customer, kind: str, address: str) -> Identity:
    """An agent records another address of a customer (an email given on a call)."""
    address = identity_normalize(kind, address)
    existing = Identity.objects.select_related("customer").filter(kind=kind, address=address).first()
    if existing is not None:
        if existing.customer_id == customer.pk:
            return existing
        raise ValidationError(
            f"{kind} {address} already belongs to {existing.customer}; merge the two customers instead."
        )
    return Identity.objects.create(customer=customer, kind=kind, address=address)


def customer_update(
    *, customer: Customer, name: str | None = None, attributes: dict | None = None
) -> Customer:
    """Change a customer's name and/or attributes. Attributes are merged key by key (a
    key set to None is removed), so two integrations each keeping their own keys never
    erase each other's."""
    fields = []
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if name is not None:
            customer.name = name[: Customer._meta.get_field("name").max_length]
            fields.append("name")
        if attributes is not None:
            merged = dict(customer.attributes or {})
            for key, value in attributes.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            customer.attributes = merged
            fields.append("attributes")
        if fields:
            customer.save(update_fields=fields)
    return customer


def identity_remove(*, identity: Identity) -> None:
    """An address that is not the customer's after all (a typo, a shared phone).

    Messages sent from or to it stay on the thread; replies go to the customer's
    other addresses from now on. A customer keeps at least one address while they
    have messages, or nobody could be answered or found again."""
    from conversations.models import Message

    with transaction.atomic():
        others = Identity.objects.filter(customer_id=identity.customer_id).exclude(pk=identity.pk)
        if not others.exists() and Message.objects.filter(thread__customer_id=identity.customer_id).exists():
            raise ValidationError(
                _("This is the customer's only address and they have messages: add another one first.")
            )
        Identity.objects.filter(pk=identity.pk).delete()


def merge_customers(*, survivor: Customer, merged: Customer, merged_by=None) -> CustomerMerge:
    """Fold `merged` into `survivor`: identities, messages and cases move; one timeline.

    Every case keeps its team. The two customers' cases in progress become one
    only when that destroys nobody else's work: the merged one is unrouted or of
    the same team. A case in progress of another team stops the merge (it would
    have to be folded away, and one customer has one case in progress).
    """
    from conversations import signals
    from conversations.models import Case, CaseStatus, Message, MessageKind, Thread
    from conversations.realtime import publish_customer_merged
    from conversations.services import system_event_add
    from conversations.visibility import customer_visible
    from kpis.models import SurveyAnswer, SurveyRequest
    from kpis.services import kpi_rollups_invalidate

    if survivor.pk == merged.pk:
        raise ValidationError(_("A customer cannot be merged into themselves."))
    if merged_by is not None and not (
        customer_visible(user=merged_by, customer=survivor)
        and customer_visible(user=merged_by, customer=merged)
    ):
        raise ValidationError(_("You may only merge customers you can see."))
    with transaction.atomic():
        # Lock both threads in id order so two concurrent merges cannot deadlock.
        threads = {
            t.customer_id: t
            for t in Thread.objects.select_for_update()
            .filter(customer_id__in=[survivor.pk, merged.pk])
            .order_by("pk")
        }
        keep, gone = threads[survivor.pk], threads[merged.pk]
        open_keep = Case.objects.filter(thread=keep).exclude(status=CaseStatus.RESOLVED).first()
        open_gone = Case.objects.filter(thread=gone).exclude(status=CaseStatus.RESOLVED).first()
        if open_keep and open_gone and open_gone.team_id not in (None, open_keep.team_id):
            raise ValidationError(
                _(
                    "%(customer)s has case #%(case)s in progress with team %(team)s. Merging would fold "
                    "it into case #%(ours)s; ask that team to resolve it or move it to this case's team "
                    "first. Nothing was changed."
                )
                % {
                    "customer": merged,
                    "case": open_gone.pk,
                    "team": open_gone.team.name,
                    "ours": open_keep.pk,
                }
            )
        snapshot = {
            "name": merged.name,
            "attributes": merged.attributes,
            "identities": list(merged.identities.values("kind", "address")),
            # What an unmerge (privacy app) needs to put everything back exactly.
            "survivor": {"name": survivor.name, "attributes": survivor.attributes},
            "survivor_thread_last_message_at": keep.last_message_at.isoformat()
            if keep.last_message_at
            else None,
            "identity_ids": list(merged.identities.values_list("pk", flat=True)),
            "message_ids": list(Message.objects.filter(thread=gone).values_list("pk", flat=True)),
            "case_ids": list(Case.objects.filter(thread=gone).values_list("pk", flat=True)),
            "survey_request_ids": list(
                SurveyRequest.objects.filter(customer=merged).values_list("pk", flat=True)
            ),
            "survey_answer_ids": list(
                SurveyAnswer.objects.filter(customer=merged).values_list("pk", flat=True)
            ),
        }
        moved = {"identities": merged.identities.update(customer=survivor)}

        # Only one case may be in progress per thread: fold the merged one in.
        if open_keep and open_gone:
            # Its calls now count for the kept case's agent and team: their days change too.
            call_times = Message.objects.filter(
                case=open_gone, kind__in=(MessageKind.CALL, MessageKind.VOICEMAIL)
            ).values_list("created_at", flat=True)
            folded_days = {timezone.localdate(t) for t in call_times}
            snapshot["folded"] = {
                "case_id": open_gone.pk,
                "message_ids": list(Message.objects.filter(case=open_gone).values_list("pk", flat=True)),
                "survey_request_ids": list(
                    SurveyRequest.objects.filter(case=open_gone).values_list("pk", flat=True)
                ),
                "survey_answer_ids": list(
                    SurveyAnswer.objects.filter(case=open_gone).values_list("pk", flat=True)
                ),
                "kept_case": {
                    "id": open_keep.pk,
                    "label_ids": list(open_keep.labels.values_list("pk", flat=True)),
                    **{
                        f: getattr(open_keep, f).isoformat() if getattr(open_keep, f) else None
                        for f in ("opened_at", "first_response_at", "waiting_since", "last_wait_started_at")
                    },
                },
            }
            Message.objects.filter(case=open_gone).update(case=open_keep)
            open_keep.labels.add(*open_gone.labels.all())
            keep_opened = open_keep.opened_at
            open_keep.opened_at = min(open_keep.opened_at, open_gone.opened_at)
            responses = [t for t in (open_keep.first_response_at, open_gone.first_response_at) if t]
            open_keep.first_response_at = min(responses) if responses else None
            waits = [t for t in (open_keep.waiting_since, open_gone.waiting_since) if t]
            open_keep.waiting_since = min(waits) if waits else None
            began = [t for t in (open_keep.last_wait_started_at, open_gone.last_wait_started_at) if t]
            open_keep.last_wait_started_at = min(began) if began else None
            open_keep.save()
            moved["folded_case"] = open_gone.pk
            # Its surveys and answers are the kept case's now (deleting the case would take them).
            SurveyRequest.objects.filter(case=open_gone).update(case=open_keep)
            SurveyAnswer.objects.filter(case=open_gone).update(case=open_keep)
            # Both cases' opening days count differently now: their rollups are recomputed.
            folded_days |= {timezone.localdate(open_gone.opened_at), timezone.localdate(keep_opened)}
            transaction.on_commit(lambda: kpi_rollups_invalidate(days=folded_days))
            snapshot["folded"]["deleted"] = deletion_snapshot(open_gone)
            open_gone.delete()

        moved["messages"] = Message.objects.filter(thread=gone).update(thread=keep)
        moved["cases"] = Case.objects.filter(thread=gone).update(thread=keep)
        bounds = Message.objects.filter(thread=keep).aggregate(last=Max("created_at"))
        keep.last_message_at = bounds["last"]
        keep.save(update_fields=["last_message_at"])

        survivor.attributes = {**merged.attributes, **survivor.attributes}
        survivor.name = survivor.name or merged.name
        survivor.save(update_fields=["attributes", "name"])
        # Survey answers are the customer's: deleting the merged customer would take
        # them (CASCADE) out of CSAT, NPS and CES, live but not in the rollups.
        SurveyAnswer.objects.filter(customer=merged).update(customer=survivor)
        SurveyRequest.objects.filter(customer=merged).update(customer=survivor)
        merged_id = merged.pk
        snapshot["deleted"] = deletion_snapshot(merged)
        merged.delete()
        record = CustomerMerge.objects.create(
            survivor=survivor,
            merged_customer_id=merged_id,
            merged_snapshot=snapshot,
            moved=moved,
            merged_by=merged_by,
        )
        event = system_event_add(
            thread=keep,
            case=open_keep or Case.objects.filter(thread=keep).order_by("-opened_at").first(),
            text=f"Merged {snapshot['name'] or f'customer #{merged_id}'} into this customer"
            + (f" by {merged_by}" if merged_by else ""),
            by=merged_by,
        )
        if event is not None:
            record.merged_snapshot["system_event_id"] = event.pk
            record.save(update_fields=["merged_snapshot"])
        signals.domain_event_emit(
            "customer.merged",
            {"customer": _customer_data(survivor), "merged_customer_id": merged_id, "moved": moved},
            f"customer:{survivor.pk}",
        )
        transaction.on_commit(lambda: publish_customer_merged(survivor_id=survivor.pk, merged_id=merged_id))
    return record
