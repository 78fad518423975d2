"""Writes on threads, cases and messages.

Each public function validates, then does its writes in one transaction and
queues its side effects (pushes to agents, sends to providers) with
transaction.on_commit, so nothing leaves the process for data that is rolled
back.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _t

from channels_adapters.base import (
    Sender,
)
from conversations import signals
from conversations.inserts import row_insert, row_update
from conversations.models import (
    RESPONSE_STATUSES,
    Author,
    Case,
    CaseStatus,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Thread,
)
from customers.models import Identity
from customers.selectors import IdentityBatch
from customers.services import identity_resolve, identity_resolve_or_create

logger = logging.getLogger(__name__)


@dataclass
class InboundResult:
    message: Message
    created: bool


def _conf(name):
    return settings.HELPDESK[name]


def _case_for_inbound(
    *, thread: Thread, channel, now: datetime, subject: str, new_customer: bool = False
) -> tuple[Case, str]:
    """The case an inbound message joins: the one in progress, a reopened one, or a new one.

    `new_customer`: the thread was made in this transaction, so it has no case to look for.
    """
    case = None
    if not new_customer:
        # One case in progress per thread (a constraint): no ORDER BY needed.
        found = Case.objects.filter(thread=thread).exclude(status=CaseStatus.RESOLVED).order_by()[:1]
        case = next(iter(found), None)
    if case is not None:
        case.thread = thread
        if case.status != CaseStatus.OPEN:
            # A customer's reply wakes a pending or snoozed case.
            case.status = CaseStatus.OPEN
            case.snoozed_until = None
            return case, "woken"
        return case, "continued"
    window = timedelta(days=_conf("REOPEN_WINDOW_DAYS"))
    last = None
    if not new_customer:
        last = (
            Case.objects.filter(thread=thread, resolved_at__gte=now - window).order_by("-resolved_at").first()
        )
    if last is not None:
        last.thread = thread
        last.status = CaseStatus.OPEN
        last.reopen_count += 1
        # resolved_at is the last resolution: it is set again when this one ends.
        last.resolved_at = None
        return last, "reopened"
    case = Case(
        thread=thread,
        origin_channel=channel,
        opened_at=now,
        status=CaseStatus.OPEN,
        subject=subject[:300],
    )
    return case, "opened"


def receive_inbound(
    *,
    channel,
    sender: Sender,
    external_id: str,
    text: str = "",
    kind: str = MessageKind.TEXT,
    html: str = "",
    attachments: list[dict] | None = None,
    timestamp: datetime | None = None,
    meta: dict | None = None,
    identities: IdentityBatch | None = None,
) -> InboundResult:
    """A customer's message arrives: find them, append to their thread, open or reopen a case.

    Idempotent on (channel, external_id): a provider's retry returns the first message.
    `identities`: the senders' identities the drain batch read at once (a
    customer created here is added to it once the message committed).
    """
    try:
        with transaction.atomic():
            result = _inbound_write(
                channel=channel, sender=sender, external_id=external_id, text=text, kind=kind,
                html=html, attachments=attachments, timestamp=timestamp, meta=meta, identities=identities,
            )  # fmt: skip
    except IntegrityError:
        # A provider's retry: the (channel, external_id) constraint refused the second
        # message, and its transaction wrote nothing (not even the customer a new
        # sender address made: the same id from another address would leave one empty).
        existing = Message.objects.filter(channel=channel, external_id=external_id).first()
        if existing is not None:
            return InboundResult(existing, created=False)
        if identities is None:
            raise
        # A first contact whose address someone took after the batch looked (a
        # racing drainer, an agent adding it): once more, looking it up.
        result = receive_inbound(
            channel=channel, sender=sender, external_id=external_id, text=text, kind=kind, html=html,
            attachments=attachments, timestamp=timestamp, meta=meta,
        )  # fmt: skip
    if identities is not None:
        identities.add(result.message.identity, address=sender.address)
    return result


# What _case_for_inbound and the arrival of a message may change on a case.
_INBOUND_CASE_FIELDS = [
    "status", "snoozed_until", "reopen_count", "resolved_at",
    "waiting_since", "last_message_at", "updated_at",
]  # fmt: skip


def _thread_lock_touch(*, customer_id: int, now: datetime, identity_id: int | None = None) -> Thread | None:
    """The customer's thread, locked and marked as written now; None when there is none.

    The lock serializes messages of one customer, so two arriving together cannot
    both open a case. On PostgreSQL one UPDATE ... RETURNING does what SELECT FOR
    UPDATE plus an UPDATE did: this runs for every inbound message.
    `identity_id`: find the thread by the identity's customer as of this
    statement (an identity a drain batch read earlier may have moved since).
    """
    if connection.vendor != "postgresql":
        if identity_id is not None:
            customer_id = (
                Identity.objects.filter(pk=identity_id).values_list("customer_id", flat=True).first()
            )
        thread = Thread.objects.select_for_update().filter(customer_id=customer_id).first()
        if thread is None:
            return None
        Thread.objects.filter(pk=thread.pk).update(last_message_at=now)
        thread.last_message_at = now
        return thread
    fields = Thread._meta.concrete_fields
    quote = connection.ops.quote_name
    if identity_id is None:
        where, param = "customer_id = %s", customer_id
    else:
        where = f"customer_id = (SELECT customer_id FROM {quote(Identity._meta.db_table)} WHERE id = %s)"  # noqa: S608
        param = identity_id
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Thread._meta.db_table)} SET last_message_at = %s WHERE {where} "  # noqa: S608
            f"RETURNING {', '.join(quote(f.column) for f in fields)}",
            [now, param],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Thread.from_db(connection.alias, [f.attname for f in fields], row)


def _inbound_write(
    *, channel, sender, external_id, text, kind, html, attachments, timestamp, meta, identities=None
) -> InboundResult:
    # In the message's transaction: a message that fails leaves no customer
    # without it behind (a retry finds nothing half-written).
    known = absent = None
    if identities is not None:
        known, absent = (
            identities.get(sender.kind, sender.address),
            identities.absent(sender.kind, sender.address),
        )
    identity, created = identity_resolve_or_create(
        kind=sender.kind, address=sender.address, name=sender.name, known=known, absent=absent
    )
    now = timezone.now()
    thread = _thread_lock_touch(
        customer_id=identity.customer_id, now=now, identity_id=identity.pk if known is not None else None
    )
    if known is not None and (thread is None or thread.customer_id != identity.customer_id):
        # Read by the batch before a merge moved the address (or deleted its customer): again, now.
        identities.forget(sender.kind, sender.address)
        identity, created = identity_resolve_or_create(
            kind=sender.kind, address=sender.address, name=sender.name
        )
        thread = _thread_lock_touch(customer_id=identity.customer_id, now=now)
    if thread is None:
        raise Thread.DoesNotExist(f"No thread for customer {identity.customer_id}")
    # An email's Subject names the case better than its first line.
    subject = str((meta or {}).get("subject") or text.strip().split("\n")[0])
    case, change = _case_for_inbound(
        thread=thread, channel=channel, now=now, subject=subject, new_customer=created
    )
    case.waiting_since = case.waiting_since or now
    case.last_message_at = now
    if change == "opened":
        row_insert(case)
    else:
        # Only what a customer's message changes: a full-row save would also put
        # back the team or assignee an agent changed a moment ago.
        row_update(case, fields=_INBOUND_CASE_FIELDS)
    message = Message(
        thread=thread,
        case=case,
        channel=channel,
        identity=identity,
        direction=Direction.IN,
        kind=kind,
        author=Author.CUSTOMER,
        body=text,
        html=html,
        attachments=attachments or [],
        meta=meta or {},
        external_id=external_id,
        provider_timestamp=timestamp,
        created_at=now,
    )
    row_insert(message)
    if change in ("opened", "reopened"):
        signals.case_event_emit(f"case.{change}", case, customer_id=thread.customer_id)
    signals.message_event_emit("message.created", message, customer_id=thread.customer_id)
    transaction.on_commit(lambda: signals.message_announce(message, case))
    if change != "continued":
        transaction.on_commit(lambda: signals.case_announce(case, change=change, message=message))
    return InboundResult(message, created=True)


def record_echo(
    *,
    channel,
    recipient: Sender,
    external_id: str,
    text: str = "",
    kind: str = MessageKind.TEXT,
    attachments: list[dict] | None = None,
    timestamp: datetime | None = None,
    meta: dict | None = None,
) -> InboundResult:
    """Our side's message seen through the provider (sent from the provider's own app).

    It is outbound and the company's, never the customer's; it does not open a case.
    """
    with transaction.atomic():
        identity = identity_resolve(kind=recipient.kind, address=recipient.address)
        thread = Thread.objects.select_for_update().get(customer_id=identity.customer_id)
        existing = Message.objects.filter(channel=channel, external_id=external_id).first()
        if existing is not None:
            transaction.set_rollback(True)  # a duplicate writes nothing (see receive_inbound)
            return InboundResult(existing, created=False)
        now = timezone.now()
        case = (
            Case.objects.filter(thread=thread).exclude(status=CaseStatus.RESOLVED).first()
            or Case.objects.filter(thread=thread).order_by("-opened_at").first()
        )
        message = Message.objects.create(
            thread=thread,
            case=case,
            channel=channel,
            identity=identity,
            direction=Direction.OUT,
            kind=kind,
            author=Author.AGENT,
            body=text,
            attachments=attachments or [],
            meta={**(meta or {}), "echo": True},
            external_id=external_id,
            provider_timestamp=timestamp,
            status=DeliveryStatus.SENT,
            created_at=now,
            sent_at=now,
        )
        if case is not None and not case.is_resolved:
            case_mark_answered(case=case, now=now)
        Thread.objects.filter(pk=thread.pk).update(last_message_at=now)
        signals.message_event_emit("message.created", message, customer_id=thread.customer_id)
        transaction.on_commit(lambda: signals.message_announce(message, case))
    return InboundResult(message, created=True)


def case_mark_answered(*, case: Case, now: datetime) -> None:
    """Our side responded (an echo, an answered call): the customer is no longer waiting.

    Only for responses that reached the customer as they are recorded; an agent's
    reply counts once its provider accepted it (case_response_record).
    """
    fields = ["waiting_since", "last_message_at", "updated_at"]
    if case.first_response_at is None or now < case.first_response_at:
        case.first_response_at = now
        fields.append("first_response_at")
    if case.waiting_since is not None:
        case.last_wait_started_at = case.waiting_since
        fields.append("last_wait_started_at")
    case.waiting_since = None
    case.last_message_at = now
    case.save(update_fields=fields)


def _response_moment(message: Message) -> datetime | None:
    # A callback may move a message straight to delivered or read: the earliest stamp.
    stamps = [t for t in (message.sent_at, message.delivered_at, message.read_at) if t is not None]
    return min(stamps) if stamps else None


def case_lock_for_message(*, message: Message) -> Case | None:
    """Lock the message's thread, then its case (the project's lock order, as receive_inbound).

    Two statements written once: every accepted send runs them, and compiling
    them through the ORM was most of their cost (bench/outbound.py, py-spy).
    """
    if not message.counts_as_agent_message:
        return None
    thread_sql, case_sql = _case_lock_statements()
    with connection.cursor() as cursor:
        # Read again, in the locking statement: a merge may have moved the message
        # since the caller loaded it.
        cursor.execute(thread_sql, [message.pk])
    # With its thread locked, the message's case cannot move any more: read in the
    # next statement (a new snapshot), as the case is locked.
    case = next(iter(Case.objects.raw(case_sql, [message.pk])), None)
    if case is None:
        return None
    message.case_id = case.pk
    return case


@functools.cache
def _case_lock_statements() -> tuple[str, str]:
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    # The thread's lock as the inbound path and replies take it (an UPDATE's): it
    # serializes with them, and it lets a status change that holds the case add
    # its timeline line (an INSERT's key-share on the thread) instead of
    # deadlocking with this send waiting for that case (tests/kpis/test_surveys.py).
    thread_lock = " FOR NO KEY UPDATE" if connection.vendor == "postgresql" else lock
    threads, cases, messages = Thread._meta.db_table, Case._meta.db_table, Message._meta.db_table
    columns = ", ".join(f'c."{f.column}"' for f in Case._meta.concrete_fields)
    thread_sql = f"SELECT t.id FROM {threads} t WHERE t.id = (SELECT m.thread_id FROM {messages} m WHERE m.id = %s){thread_lock}"  # noqa: S608, E501
    case_sql = f"SELECT {columns} FROM {cases} c WHERE c.id = (SELECT m.case_id FROM {messages} m WHERE m.id = %s){lock}"  # noqa: S608, E501
    return thread_sql, case_sql


def case_response_record(*, case: Case | None, message: Message) -> bool:
    """An agent's reply was accepted by its provider: now it is a response.

    The case's first response is the earliest such moment, and the customer stops
    waiting. Call it in the status change's transaction, with the case from
    case_lock_for_message. Returns whether the case changed.
    """
    moment = _response_moment(message)
    if case is None or moment is None or message.status not in RESPONSE_STATUSES:
        return False
    fields = []
    # Even on a case resolved while the reply was queued: the customer did get an answer.
    if case.first_response_at is None or moment < case.first_response_at:
        case.first_response_at = moment
        fields.append("first_response_at")
    if case.waiting_since is not None:
        case.last_wait_started_at = case.waiting_since
        case.waiting_since = None
        fields += ["waiting_since", "last_wait_started_at"]
    if not fields:
        return False
    case.save(update_fields=[*fields, "updated_at"])
    # No case.updated here: the message.updated push of this very status change
    # refreshes the case's inbox row, and a case.updated would re-render the
    # agent's case panel right after every reply (wiping a status they are setting).
    return True


def _case_response_moments(*, case: Case, exclude_pk: int) -> list[datetime]:
    """When the case's other responses reached the customer: sent agent replies and answered calls."""
    replies = (
        Message.objects.filter(
            case=case, direction=Direction.OUT, author=Author.AGENT, status__in=RESPONSE_STATUSES
        )
        .exclude(kind__in=(MessageKind.NOTE, MessageKind.SYSTEM, MessageKind.CALL))
        .exclude(pk=exclude_pk)
        .values_list("sent_at", "delivered_at", "read_at")
    )
    moments = [min(t for t in row if t is not None) for row in replies if any(row)]
    calls = Message.objects.filter(case=case, kind=MessageKind.CALL, meta__answered=True)
    calls = calls.exclude(pk=exclude_pk)
    moments += list(calls.values_list("created_at", flat=True))
    return moments


def case_response_withdraw(*, case: Case | None, message: Message) -> bool:
    """A reply that had counted as a response failed for good: it never reached the customer.

    The first response falls back to the next real one (or none), and when no
    other response came since the customer's wait began, the case waits again
    from that original time. Returns whether the case changed (and is announced).
    """
    moment = _response_moment(message)
    if case is None or moment is None:
        return False  # never counted: the case is still as it was (waiting, if it was)
    others = _case_response_moments(case=case, exclude_pk=message.pk)
    fields = []
    if case.first_response_at is not None and not any(t <= case.first_response_at for t in others):
        case.first_response_at = min(others) if others else None
        fields.append("first_response_at")
    began = case.last_wait_started_at
    if (
        not case.is_resolved
        and began is not None
        and moment >= began
        and not any(t >= began for t in others)
        and (case.waiting_since is None or began < case.waiting_since)
    ):
        case.waiting_since = began
        fields.append("waiting_since")
    if not fields:
        return False
    case.save(update_fields=[*fields, "updated_at"])
    transaction.on_commit(lambda: signals.case_announce(case, change="waiting"))
    return True


def add_note(*, case: Case, author_user, body: str) -> Message:
    """An internal note: agents see it, the customer never does, KPIs ignore it."""
    body = (body or "").strip()
    if not body:
        raise ValidationError(_t("A note needs text."))
    with transaction.atomic():
        message = Message.objects.create(
            thread=case.thread,
            case=case,
            direction=Direction.OUT,
            kind=MessageKind.NOTE,
            author=Author.AGENT,
            author_user=author_user,
            body=body,
            created_at=timezone.now(),
        )
        transaction.on_commit(lambda: signals.message_announce(message, case))
    return message


def system_event_add(*, thread: Thread, case: Case | None, text: str, by=None) -> Message:
    """A line in the timeline for what happened to the case (assigned, resolved, merged)."""
    message = Message.objects.create(
        thread=thread,
        case=case,
        direction=Direction.OUT,
        kind=MessageKind.SYSTEM,
        author=Author.BOT,
        author_user=by,
        body=text,
        created_at=timezone.now(),
    )
    transaction.on_commit(lambda: signals.message_announce(message))
    return message


def _who(user) -> str:
    if user is None:
        return "automation"
    return user.get_full_name() or user.get_username()


# The agents' replies live in conversations/replies.py; callers import them from here.
from conversations.replies import reply_fallback, send_automatic, send_reply  # noqa: E402, F401
