from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext_lazy as _

from conversations.models import CannedResponse, Case, CaseRead, Mention, Message, Thread
from conversations.visibility import case_visible, cases_visible_to, messages_visible_to, user_team_ids
from customers.identity import phone_normalize
from customers.models import Customer, Identity, IdentityKind


def case_open_for_thread(*, thread: Thread) -> Case | None:
    return Case.objects.filter(thread=thread).exclude(status="resolved").first()


# Inbox (agent UI) ---------------------------------------------------------------
#
# Every read below runs a fixed number of queries whatever the number of rows:
# related rows come through select_related / one prefetch / per-row subqueries
# computed by the database, never through a query per row.

INBOX_PAGE_SIZE = 25
# A search matching at most this many cases reads them by id (see _search).
SEARCH_CASE_LIST_MAX = 1000
TIMELINE_LIMIT = 300

# view name -> (label, statuses, sort field, newest first)
INBOX_VIEWS = {
    "mine": (_("Mine"), ("open", "pending", "snoozed"), "waiting_since", False),
    "unassigned": (_("Unassigned"), ("open", "pending"), "waiting_since", False),
    "open": (_("All open"), ("open",), "waiting_since", False),
    "pending": (_("Pending"), ("pending",), "waiting_since", False),
    "snoozed": (_("Snoozed"), ("snoozed",), "snoozed_until", False),
    "resolved": (_("Resolved"), ("resolved",), "resolved_at", True),
    # Every case the agent may see, whatever its status: where search looks.
    "all": (_("All"), ("open", "pending", "snoozed", "resolved"), "last_message_at", True),
}
# Views whose count the list shows; Resolved and All grow forever, a count there says nothing.
COUNTED_VIEWS = ("mine", "unassigned", "open", "pending", "snoozed")


@dataclass
class InboxFilters:
    view: str = "open"
    channel: int | None = None
    team: int | None = None
    label: int | None = None
    agent: int | None = None
    priority: int | None = None
    q: str = ""
    after: str = ""


@dataclass
class InboxPage:
    cases: list
    next_cursor: str | None


def _message_text_matches(q: str) -> QuerySet[Message]:
    if connection.vendor == "postgresql":
        # Same expression as the GIN index of migration 0002, so the index answers.
        match = RawSQL(
            "to_tsvector('simple'::regconfig, body) @@ plainto_tsquery('simple'::regconfig, %s)",
            [q],
            output_field=BooleanField(),
        )
        return Message.objects.filter(match)
    return Message.objects.filter(body__icontains=q)


_PHONE_CHARS = set("0123456789+-(). /")


def phone_search_numbers(q: str) -> list[str]:
    """The E.164 numbers a typed query may mean ("+1 415 555 0123", "(415) 555-0123",
    "415.555.0123"), through ingestion's own normalization; [] when it is no number."""
    q = q.strip()
    if not q or not set(q) <= _PHONE_CHARS or sum(ch.isdigit() for ch in q) < 7:
        return []
    numbers = set()
    # Ingestion reads a long run of digits as carrying its country code; a person
    # typing a national number means the default region: both readings are offered.
    for candidate in (q, "(" + q.lstrip("(") if q[0].isdigit() else q):
        try:
            numbers.add(phone_normalize(candidate))
        except ValidationError:
            continue
    return sorted(numbers)


def _search(cases: QuerySet[Case], q: str) -> QuerySet[Case]:
    q = q.strip()
    if not q:
        return cases
    # Trigram indexes on name and address (customers migration 0002), the full-text
    # index of the bodies (conversations migration 0002).
    by_name = Customer.objects.filter(name__icontains=q).values("pk")
    addresses = Q(address__icontains=q)
    numbers = phone_search_numbers(q)
    if numbers:
        addresses |= Q(kind=IdentityKind.PHONE, address__in=numbers)
    by_address = Identity.objects.filter(addresses).values("customer_id")
    texts = _message_text_matches(q).exclude(case_id__isnull=True)
    # What matches, each source capped on its own before anything is joined to it: the
    # customers by name and by address, the cases by message text (capping the cases
    # after joining the customers' threads let PostgreSQL join every matching customer
    # first: 111 ms for "García", 12,668 customers at 1M, EXPLAIN ANALYZE at 10M messages).
    cap = SEARCH_CASE_LIST_MAX + 1
    found = list(
        # Unordered: any 1,001 will do, and the customers' default order (newest first)
        # walked the created_at index testing every name (147 ms for "García").
        by_name.annotate(by=Value("name"))
        .order_by()
        .values_list("by", "pk")[:cap]
        .union(
            by_address.annotate(by=Value("address")).order_by().values_list("by", "customer_id")[:cap],
            texts.annotate(by=Value("text")).order_by().values_list("by", "case_id")[:cap],
            all=True,
        )
    )
    named, addressed, texted = (
        [pk for by, pk in found if by == source] for source in ("name", "address", "text")
    )
    # Counted before removing repeats (a customer's identities, a case's messages): a
    # capped list is not every match.
    many = {
        source
        for source, rows in zip(("name", "address", "text"), (named, addressed, texted), strict=True)
        if len(rows) > SEARCH_CASE_LIST_MAX
    }
    if not many:
        # Few (a full name, an email, a phone, an order number): their ids, then the page
        # read by id. Under an OR of three INs PostgreSQL tested every case the agent may
        # see against the three lists (210 ms at 1M cases for a name 162 customers share).
        threads = Thread.objects.filter(customer_id__in={*named, *addressed}).values("pk")
        ids = list(Case.objects.filter(thread_id__in=threads).order_by().values_list("pk", flat=True)[:cap])
        ids += texted
        if len(ids) <= SEARCH_CASE_LIST_MAX:
            return cases.filter(pk__in=set(ids))
    # Many ("García", a common word): walk the cases newest first and test each, the page
    # stops once full. The name is tested on the customer row the page joins anyway; the
    # address and the text, when common, per case through its customer's identities and
    # its messages: a list of a million matches is neither hashed nor cheap to scan
    # ("refund", "example.com": more than 30 s a page, before and after the lists).
    if "address" in many:  # "example.com": per case through its customer's few identities
        addresses_q = Q(
            Exists(Identity.objects.filter(addresses, customer_id=OuterRef("thread__customer_id")))
        )
    else:
        addresses_q = Q(thread__customer_id__in=addressed)
    texts_q = Q(Exists(texts.filter(case_id=OuterRef("pk")))) if "text" in many else Q(pk__in=texted)
    return cases.filter(Q(thread__customer__name__icontains=q) | addresses_q | texts_q)


def encode_cursor(value, pk: int) -> str:
    return f"{value.isoformat() if value else ''}|{pk}"


def _decode_cursor(cursor: str):
    try:
        raw, pk = cursor.rsplit("|", 1)
        value = datetime.fromisoformat(raw) if raw else None
        return value, int(pk)
    except ValueError:
        return None


def _keyset(cases: QuerySet[Case], field: str, newest_first: bool, cursor: str) -> QuerySet[Case]:
    """Seek after the cursor instead of OFFSET: page 1,000 costs what page 1 costs.
    Rows without a sort value come last, in id order."""
    order = F(field).desc(nulls_last=True) if newest_first else F(field).asc(nulls_last=True)
    cases = cases.order_by(order, "-pk" if newest_first else "pk")
    decoded = _decode_cursor(cursor) if cursor else None
    if decoded is None:
        return cases
    value, pk = decoded
    pk_after = "pk__lt" if newest_first else "pk__gt"
    if value is None:
        return cases.filter(**{f"{field}__isnull": True, pk_after: pk})
    beyond = "lt" if newest_first else "gt"
    return cases.filter(
        Q(**{f"{field}__{beyond}": value})
        | Q(**{field: value, pk_after: pk})
        | Q(**{f"{field}__isnull": True})
    )


def cases_filtered(
    cases: QuerySet[Case],
    *,
    channel: int | None = None,
    team: int | None = None,
    label: int | None = None,
    agent: int | None = None,
    priority: int | None = None,
) -> QuerySet[Case]:
    """The inbox's filters, shared by the inbox list and the REST API's case list."""
    if channel:
        cases = cases.filter(origin_channel_id=channel)
    if team:
        cases = cases.filter(team_id=team)
    if label:
        # One label per filter: a case matches at most once, no DISTINCT needed.
        cases = cases.filter(labels__id=label)
    if agent:
        cases = cases.filter(assignee_id=agent)
    if priority is not None:
        cases = cases.filter(priority=priority)
    return cases


def _view_q(view: str, *, user) -> Q:
    """The cases of one inbox view, as a condition (the list and the counts share it)."""
    _, statuses, _sort, _newest = INBOX_VIEWS[view]
    q = Q(status__in=statuses)
    if view == "mine":
        q &= Q(assignee_id=user.pk)
    elif view == "unassigned":
        q &= Q(assignee__isnull=True)
    return q


def inbox_counts(*, user) -> dict:
    """Cases per counted view and the user's unread cases (Mine and Unassigned), in one
    query over the cases the user may see: {"views": {view: n}, "unread": n}."""
    # The user's read marks joined once (one per case at most: a unique pair), rather
    # than a subquery per case: a hash join instead of thousands of look-ups.
    working = _view_q("mine", user=user) | _view_q("unassigned", user=user)
    seen = Q(_mine_read__read_at__gte=F("last_message_at"))
    unread = working & Q(last_message_at__isnull=False) & ~Q(seen & Q(_mine_read__isnull=False))
    row = (
        cases_visible_to(user=user)
        .filter(status__in=("open", "pending", "snoozed"))
        .annotate(_mine_read=FilteredRelation("reads", condition=Q(reads__user_id=user.pk)))
        .aggregate(
            unread=Count("pk", filter=unread),
            **{view: Count("pk", filter=_view_q(view, user=user)) for view in COUNTED_VIEWS},
        )
    )
    return {"views": {view: row[view] for view in COUNTED_VIEWS}, "unread": row["unread"]}


def inbox_page(*, user, filters: InboxFilters) -> InboxPage:
    view = filters.view if filters.view in INBOX_VIEWS else "open"
    _, statuses, sort_field, newest_first = INBOX_VIEWS[view]
    cases = cases_visible_to(user=user).filter(_view_q(view, user=user))
    cases = cases_filtered(
        cases,
        channel=filters.channel,
        team=filters.team,
        label=filters.label,
        agent=filters.agent,
        priority=filters.priority,
    )
    cases = _search(cases, filters.q)

    # Small queries with simple plans beat one query with four correlated subqueries:
    # on a busy server the planner's time alone dominated that one.
    latest = Message.objects.filter(case_id=OuterRef("pk"), kind__in=TIMELINE_PREVIEW_KINDS).order_by(
        "-created_at", "-id"
    )
    cases = (
        cases.select_related("thread__customer", "assignee", "team", "origin_channel")
        .defer("origin_channel__credentials")
        .prefetch_related("labels")
        .annotate(preview_id=Subquery(latest.values("id")[:1]))
    )
    rows = list(_keyset(cases, sort_field, newest_first, filters.after)[: INBOX_PAGE_SIZE + 1])
    more = len(rows) > INBOX_PAGE_SIZE
    rows = rows[:INBOX_PAGE_SIZE]
    previews = {
        m["id"]: m
        for m in Message.objects.filter(pk__in=[c.preview_id for c in rows if c.preview_id]).values(
            "id", "body", "direction", "status", "channel__kind"
        )
    }
    reads = dict(
        CaseRead.objects.filter(user_id=user.pk, case_id__in=[c.pk for c in rows]).values_list(
            "case_id", "read_at"
        )
    )
    for case in rows:
        preview = previews.get(case.preview_id, {})
        case.preview = preview.get("body", "")
        case.preview_direction = preview.get("direction")
        case.preview_status = preview.get("status")
        case.preview_channel_kind = preview.get("channel__kind")
        case.read_at = seen = reads.get(case.pk)
        case.unread = bool(case.last_message_at and (seen is None or seen < case.last_message_at))
    next_cursor = encode_cursor(getattr(rows[-1], sort_field), rows[-1].pk) if more else None
    return InboxPage(cases=rows, next_cursor=next_cursor)


TIMELINE_PREVIEW_KINDS = ("text", "media", "call", "voicemail")


def case_for_agent(*, user, pk: int) -> Case | None:
    """The case if the user may see it, with `read_at`: when they last looked at it."""
    read_at = CaseRead.objects.filter(case_id=OuterRef("pk"), user_id=user.pk).values("read_at")[:1]
    return (
        cases_visible_to(user=user)
        .select_related("thread__customer", "assignee", "team", "origin_channel")
        .defer("origin_channel__credentials")
        .prefetch_related("labels")
        .annotate(read_at=Subquery(read_at))
        .filter(pk=pk)
        .first()
    )


TIMELINE_FIELDS = (
    "id",
    "thread_id",
    "case_id",
    "channel_id",
    "identity_id",
    "direction",
    "kind",
    "author",
    "author_user_id",
    "body",
    "html",
    "attachments",
    "meta",
    "status",
    "error",
    "created_at",
)


class TimelineItem:
    """A message as the timeline shows it: plain attributes, no model machinery, so a
    thread of hundreds of messages loads in a few milliseconds."""

    __slots__ = (*TIMELINE_FIELDS, "channel", "identity", "author_user")

    def __init__(self, row: dict):
        for name in TIMELINE_FIELDS:
            setattr(self, name, row[name])
        self.channel = self.identity = self.author_user = None

    @property
    def pk(self):
        return self.id


def thread_messages_visible(*, thread: Thread | int, user) -> QuerySet[Message]:
    """The customer's timeline as `user` may read it: the inbox's thread and the REST API's."""
    thread_id = thread if isinstance(thread, int) else thread.pk
    return messages_visible_to(user=user, messages=Message.objects.filter(thread_id=thread_id))


def timeline(
    *,
    thread: Thread,
    user,
    before: int | None = None,
    after: int | None = None,
    message_id: int | None = None,
    loaded: Iterable = (),
) -> list[TimelineItem]:
    """The newest TIMELINE_LIMIT messages of the customer's timeline (all channels, all
    cases) that `user` may read, oldest first; `before`/`after` page by message id,
    `message_id` reads one.

    Channels, authors and identities are few per thread: they are loaded once each
    and attached, instead of joined and rebuilt for every message. `loaded`: rows of
    those the caller has read already (the case page's channels, agents and the
    customer's identities), looked up before asking the database."""
    messages = thread_messages_visible(thread=thread, user=user)
    messages = messages.order_by("created_at", "id").values(*TIMELINE_FIELDS)
    if message_id is not None:
        rows = list(messages.filter(pk=message_id))
    elif after is not None:
        rows = list(messages.filter(pk__gt=after)[:TIMELINE_LIMIT])
    else:
        if before is not None:
            messages = messages.filter(pk__lt=before)
        rows = list(messages.order_by("-created_at", "-id")[: TIMELINE_LIMIT + 1])
        rows.reverse()
    items = [TimelineItem(row) for row in rows]
    _attach_related(items, loaded=loaded)
    return items


def _attach_related(items: list[TimelineItem], *, loaded: Iterable = ()) -> None:
    from django.contrib.auth import get_user_model

    from channels_adapters.models import Channel

    known = {(type(row), row.pk): row for row in loaded}

    def load(model, ids, defer=()):
        ids = {pk for pk in ids if pk is not None}
        found = {pk: known[model, pk] for pk in ids if (model, pk) in known}
        missing = ids - found.keys()
        if missing:
            found.update({row.pk: row for row in model.objects.filter(pk__in=missing).defer(*defer)})
        return found

    # Credentials stay encrypted: the timeline only needs a channel's kind and name.
    channels = load(Channel, (m.channel_id for m in items), defer=["credentials"])
    users = load(get_user_model(), (m.author_user_id for m in items))
    identities = load(Identity, (m.identity_id for m in items))
    for m in items:
        m.channel = channels.get(m.channel_id)
        m.author_user = users.get(m.author_user_id)
        m.identity = identities.get(m.identity_id)


def thread_cases(*, thread: Thread, user) -> list[Case]:
    """Every case of the customer; `visible` says which ones the user may open (the
    others are listed by number, team and status only)."""
    cases = list(
        Case.objects.filter(thread=thread)
        .select_related("assignee", "origin_channel", "team")
        .defer("origin_channel__credentials")
        .order_by("-opened_at")
    )
    for case in cases:
        case.visible = case_visible(user=user, case=case)
    return cases


def agents_queryset() -> QuerySet:
    """Everyone who works the inbox (agents, supervisors, admins), active."""
    from django.contrib.auth import get_user_model

    from helpdesk.roles import ROLE_GROUPS

    users = get_user_model().objects
    roles = users.filter(Q(groups__name__in=ROLE_GROUPS) | Q(is_superuser=True)).values("pk")
    # A subquery rather than DISTINCT over the join: the caller orders as it likes.
    return users.filter(pk__in=roles, is_active=True)


def agents_list():
    return list(agents_queryset().order_by("first_name", "username"))


def canned_responses_visible(*, user) -> QuerySet[CannedResponse]:
    """Canned responses for everyone and those of the user's teams."""
    team_ids = user_team_ids(user=user)
    return CannedResponse.objects.filter(Q(team__isnull=True) | Q(team_id__in=team_ids))


def canned_responses_for(*, user) -> list[CannedResponse]:
    return list(canned_responses_visible(user=user))


def mentions_unread_count(*, user) -> int:
    return Mention.objects.filter(user=user, read_at__isnull=True).count()


def mentions_for(*, user, limit: int = 50) -> list[Mention]:
    return list(
        Mention.objects.filter(user=user)
        .select_related("message__author_user", "case__thread__customer")
        .order_by("-created_at")[:limit]
    )


def next_case_after(*, user, case: Case) -> Case | None:
    """The next case in the user's all-open queue after this one (keyboard 'n')."""
    page = inbox_page(
        user=user, filters=InboxFilters(view="open", after=encode_cursor(case.waiting_since, case.pk))
    )
    if case.status != "open" or not page.cases:
        page = inbox_page(user=user, filters=InboxFilters(view="open"))
        return next((c for c in page.cases if c.pk != case.pk), None)
    return page.cases[0]


def identity_reaching(*, customer_id: int, channel, adapter, last_inbound: Message | None) -> Identity | None:
    """The customer's address on `channel`: the one their last message there came from
    (`last_inbound`, the caller's read), else the newest of theirs the channel reaches,
    in the adapter's order of kinds. None when it reaches none. Replies (send_reply)
    and outreach (outreach.rules) ask the same question."""
    if last_inbound is not None and last_inbound.identity.customer_id == customer_id:
        return last_inbound.identity  # not an address merged away to another customer since
    reachable = {}
    for identity in Identity.objects.filter(customer_id=customer_id).order_by("-created_at"):
        if identity.kind in adapter.identity_kinds and adapter.reaches(channel, identity):
            reachable.setdefault(identity.kind, identity)
    return next((reachable[kind] for kind in adapter.identity_kinds if kind in reachable), None)
