"""Reads on customers for the agent inbox (sidebar search, merge preview)."""

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet

from customers.identity import phone_normalize
from customers.models import Customer, Identity, IdentityKind


def customers_matching(q: str) -> QuerySet[Customer]:
    """Customers whose name or any address contains `q`, or whose phone is `q` written
    any way ("(415) 555-0199", "+1 415 555 0199"): normalized as ingestion does."""
    q = (q or "").strip()
    by_address = Identity.objects.filter(address__icontains=q)
    try:
        phone = phone_normalize(q)
    except ValidationError:
        phone = None
    if phone and any(ch.isdigit() for ch in q):
        by_address = Identity.objects.filter(
            Q(address__icontains=q) | Q(kind=IdentityKind.PHONE, address=phone)
        )
    return Customer.objects.filter(Q(name__icontains=q) | Q(pk__in=by_address.values("customer_id")))


def customer_search(*, user, q: str, limit: int = 10) -> QuerySet[Customer]:
    """Customers the user may see whose name or any address contains `q` (merge with…)."""
    from conversations.visibility import customers_visible_to

    q = (q or "").strip()
    if len(q) < 2:
        return Customer.objects.none()
    found = customers_matching(q)
    return (
        customers_visible_to(user=user, customers=found)
        .prefetch_related("identities")
        .order_by("name", "pk")[:limit]
    )


def customer_merge_preview(*, survivor: Customer, merged: Customer) -> dict:
    """What a merge would do, for the agent to confirm: nothing is written."""
    from conversations.models import Case, Message

    def counts(customer):
        return {
            "identities": list(customer.identities.values_list("kind", "address")),
            "messages": Message.objects.filter(thread__customer=customer).count(),
            "cases": Case.objects.filter(thread__customer=customer).aggregate(
                total=Count("pk"), open=Count("pk", filter=~Q(status="resolved"))
            ),
        }

    return {
        "survivor": survivor,
        "merged": merged,
        "survivor_counts": counts(survivor),
        "merged_counts": counts(merged),
        "attributes": {**merged.attributes, **survivor.attributes},
    }
