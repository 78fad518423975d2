"""Reads on customers for the agent inbox (sidebar search, merge preview)."""

from django.core.exceptions import ValidationError
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from customers.identity import phone_normalize
from customers.models import Customer, Identity, IdentityKind

# At most this many matches are read as a list of ids (see customers_matching).
SEARCH_ID_LIST_MAX = 1000


def customers_matching(q: str, *, in_page_order: bool = True) -> QuerySet[Customer]:
    """Customers whose name or any address contains `q`, or whose phone is `q` written
    any way ("(415) 555-0199", "+1 415 555 0199"): normalized as ingestion does.

    `in_page_order`: the caller reads a page in the customers' own order (newest
    first, the REST API); False when it sorts by something else (the inbox, by name).
    """
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
    # Few matches (an email, a phone, a full name): their ids come from the two trigram
    # indexes (names, addresses) and the page is read by id. Many ("gmail"): they are
    # dense, and walking the customers in page order stops as soon as a page is full.
    # Either plan alone is slow on the other kind: the OR reads every customer for a
    # rare match, the id list gathers and sorts 100,000 ids for a common one.
    # Each side capped on its own: its LIMIT lets the planner pick a plan that stops early
    # (a plain scan when matches are everywhere, the index when they are rare).
    cap = SEARCH_ID_LIST_MAX + 1
    by_name = Customer.objects.filter(name__icontains=q).values_list("pk", flat=True)[:cap]
    ids = set(by_name.union(by_address.values_list("customer_id", flat=True)[:cap], all=True))
    if len(ids) <= SEARCH_ID_LIST_MAX:
        return Customer.objects.filter(pk__in=ids)
    if not in_page_order:
        # Sorted otherwise (by name): every match is read anyway, one hashed list is cheapest.
        return Customer.objects.filter(Q(name__icontains=q) | Q(pk__in=by_address.values("customer_id")))
    # Per customer, in page order: a scalar subquery, since PostgreSQL would answer an
    # IN or an EXISTS under this OR by gathering every matching address first.
    address = by_address.filter(customer_id=OuterRef("pk")).values("pk")[:1]
    return Customer.objects.alias(_address=Subquery(address)).filter(
        Q(name__icontains=q) | Q(_address__isnull=False)
    )


def customer_search(*, user, q: str, limit: int = 10) -> QuerySet[Customer]:
    """Customers the user may see whose name or any address contains `q` (merge with…)."""
    from conversations.visibility import customers_visible_to

    q = (q or "").strip()
    if len(q) < 2:
        return Customer.objects.none()
    found = customers_matching(q, in_page_order=False)
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


class IdentityBatch:
    """The identities of a drain batch's senders, read in one query before its messages are written.

    Keys are (kind, address as the provider gave it). A sender whose address
    does not normalize is left out (its message fails on its own, with the
    reason). Rows created while the batch is written are added by the writer
    once their message committed, so a new customer's second message in the
    batch finds them too. An entry may be stale by the time it is used (a merge
    committed meanwhile): the writer checks it under the thread's lock.
    """

    def __init__(self):
        self.normalized: dict[tuple[str, str], str] = {}
        self.found: dict[tuple[str, str], Identity] = {}

    def get(self, kind: str, address: str) -> Identity | None:
        normalized = self.normalized.get((kind, address))
        return None if normalized is None else self.found.get((kind, normalized))

    def absent(self, kind: str, address: str) -> str | None:
        """The normalized address when the batch found nobody at it (a first contact), else None."""
        normalized = self.normalized.get((kind, address))
        if normalized is None or (kind, normalized) in self.found:
            return None
        return normalized

    def add(self, identity: Identity, *, address: str) -> None:
        self.normalized[(identity.kind, address)] = identity.address
        self.found[(identity.kind, identity.address)] = identity

    def forget(self, kind: str, address: str) -> None:
        normalized = self.normalized.get((kind, address))
        if normalized is not None:
            self.found.pop((kind, normalized), None)


def identities_for_senders(*, senders) -> IdentityBatch:
    """One query for the identities (with their customers) of `senders` ((kind, address) pairs)."""
    from customers.identity import identity_normalize

    batch = IdentityBatch()
    by_kind: dict[str, set[str]] = {}
    for kind, address in senders:
        if (kind, address) in batch.normalized:
            continue
        try:
            normalized = identity_normalize(kind, address)
        except ValidationError:
            continue
        batch.normalized[(kind, address)] = normalized
        by_kind.setdefault(kind, set()).add(normalized)
    if not by_kind:
        return batch
    where = Q()
    for kind, addresses in by_kind.items():
        where |= Q(kind=kind, address__in=addresses)
    for identity in Identity.objects.select_related("customer").filter(where).order_by():
        batch.found[(identity.kind, identity.address)] = identity
    return batch
