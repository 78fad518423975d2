"""Reads for the customers directory: every one goes through conversations.visibility."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from customers.models import Customer, CustomerMerge

PAGE_SIZE = 50
TIMELINE_LIMIT = 200


@dataclass
class DirectoryPage:
    customers: list
    page: int
    has_next: bool
    q: str


def customers_directory(*, user, q: str = "", page: int = 1) -> DirectoryPage:
    """A page of the customers this user may see, newest first, with their addresses
    and how many cases they have (open ones too): one query for the page, one for the
    addresses, whatever the page size."""
    from conversations.models import Case
    from conversations.visibility import customers_visible_to
    from customers.selectors import customers_matching

    q = (q or "").strip()
    page = max(1, page)
    found = customers_matching(q) if q else Customer.objects.all()
    cases = Case.objects.filter(thread__customer_id=OuterRef("pk")).order_by().values("thread__customer_id")
    rows = list(
        customers_visible_to(user=user, customers=found)
        .annotate(
            case_total=Coalesce(Subquery(cases.annotate(n=Count("pk")).values("n")), 0),
            case_open=Coalesce(
                Subquery(cases.exclude(status="resolved").annotate(n=Count("pk")).values("n")), 0
            ),
        )
        .prefetch_related("identities")
        .order_by("-created_at", "-pk")[(page - 1) * PAGE_SIZE : page * PAGE_SIZE + 1]
    )
    return DirectoryPage(customers=rows[:PAGE_SIZE], page=page, has_next=len(rows) > PAGE_SIZE, q=q)


def customer_for_user(*, user, pk: int) -> Customer | None:
    from conversations.visibility import customers_visible_to

    return customers_visible_to(user=user).filter(pk=pk).prefetch_related("identities").first()


def customer_page(*, user, customer: Customer) -> dict:
    """The customer page: their cases and timeline as this user may read them, and the merges."""
    from conversations.models import Message, MessageKind
    from conversations.selectors import thread_messages_visible
    from conversations.visibility import cases_visible_to

    thread = customer.thread
    cases = list(
        cases_visible_to(user=user)
        .filter(thread=thread)
        .select_related("assignee", "team", "origin_channel")
        .order_by("-opened_at")
    )
    messages = list(
        thread_messages_visible(thread=thread, user=user)
        .select_related("channel", "author_user", "identity")
        .order_by("-created_at", "-pk")[:TIMELINE_LIMIT]
    )
    messages.reverse()
    total = Message.objects.filter(thread=thread).count()
    merges = list(
        CustomerMerge.objects.filter(survivor=customer)
        .select_related("merged_by", "unmerged_by")
        .order_by("-merged_at")
    )
    return {
        "thread": thread,
        "cases": cases,
        "timeline_messages": messages,
        "messages_hidden": max(0, total - len(messages)),
        "merges": merges,
        "note_kind": MessageKind.NOTE,
        "system_kind": MessageKind.SYSTEM,
        "attribute_rows": sorted((customer.attributes or {}).items()),
    }
