"""Replies: an agent's (or a bot's) message queued for its provider.

Validated first (channel, address, the channel's rules), then one transaction
locks the thread, writes the queued message and touches the case; the send is
queued on commit (conversations/batches.py sends it). Every reply an agent
writes runs this path, so its reads and writes are SQL written once, not
compiled by the ORM each time: that compilation was most of a reply's CPU
(bench/outbound.py --producer-cpu).
"""

from __future__ import annotations

import functools
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _t

from channels_adapters.base import OutboundRefused
from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations import signals
from conversations.inserts import insert_into, insert_values
from conversations.models import (
    NOT_A_REPLY_SOURCE,
    Author,
    Case,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Thread,
)
from conversations.selectors import identity_reaching
from customers.models import Identity

# The customer's latest messages read for a reply: its channel and address are
# almost always among them, one query instead of one for each (bench/outbound.py).
_LATEST_INBOUND = 8
# In the model's field order: Model.from_db takes a subset's values in that order.
_LATEST_FIELDS = tuple(
    f.attname
    for f in Message._meta.concrete_fields
    if f.attname in {"id", "kind", "channel_id", "identity_id", "created_at", "provider_timestamp"}
)


def _reader(model):
    """(attnames, [converters per column]) to build `model` instances from raw rows.

    The converters are the ones the ORM applies (an encrypted field decrypts,
    a JSON field parses): a raw row must give the same instance a queryset would.
    """
    fields = model._meta.concrete_fields
    converters = []
    for field in fields:
        col = field.get_col(model._meta.db_table)
        converters.append(connection.ops.get_db_converters(col) + col.get_db_converters(connection))
    return [f.attname for f in fields], fields, converters


def _instance(model, reader, values):
    attnames, fields, converters = reader
    converted = []
    for value, field, funcs in zip(values, fields, converters, strict=True):
        for func in funcs:
            value = func(value, field, connection)
        converted.append(value)
    return model.from_db(connection.alias, attnames, converted)


@functools.cache
def _latest_statement():
    from channels_adapters.models import Channel

    quote = connection.ops.quote_name
    channels, identities = _reader(Channel), _reader(Identity)
    columns = [
        *(f"m.{quote(name)}" for name in _LATEST_FIELDS),
        *(f"ch.{quote(f.column)}" for f in channels[1]),
        *(f"i.{quote(f.column)}" for f in identities[1]),
    ]
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(Message._meta.db_table)} m "  # noqa: S608 - names from the models
        f"JOIN {quote(Channel._meta.db_table)} ch ON ch.id = m.channel_id "
        f"LEFT JOIN {quote(Identity._meta.db_table)} i ON i.id = m.identity_id "
        "WHERE m.thread_id = %s AND m.direction = %s "
        "ORDER BY m.created_at DESC, m.id DESC LIMIT %s"
    )
    return sql, channels, identities


def _latest_inbound(thread: Thread) -> list[Message]:
    """The thread's latest inbound messages, newest first, with their channel and identity.

    Only the columns a reply reads; each channel (its credentials decrypted)
    and identity is built once however many of the rows share it.
    """
    from channels_adapters.models import Channel

    sql, channel_reader, identity_reader = _latest_statement()
    width, channel_width = len(_LATEST_FIELDS), len(channel_reader[0])
    with connection.cursor() as cursor:
        cursor.execute(sql, [thread.pk, Direction.IN, _LATEST_INBOUND])
        rows = cursor.fetchall()
    channels, identities, latest = {}, {}, []
    for row in rows:
        message = Message.from_db(connection.alias, _LATEST_FIELDS, row[:width])
        if message.channel_id not in channels:
            channel_row = row[width : width + channel_width]
            channels[message.channel_id] = _instance(Channel, channel_reader, channel_row)
        message.channel = channels[message.channel_id]
        if message.identity_id is not None:
            if message.identity_id not in identities:
                identities[message.identity_id] = _instance(
                    Identity, identity_reader, row[width + channel_width :]
                )
            message.identity = identities[message.identity_id]
        latest.append(message)
    return latest


def _reply_channel(thread: Thread, latest: list[Message] | None = None):
    """By default, answer where the customer last wrote to us."""
    if latest is not None:
        for message in latest:
            if message.kind not in NOT_A_REPLY_SOURCE:
                return message.channel
        if len(latest) < _LATEST_INBOUND:
            return None  # that was every inbound message of the thread
    latest = (
        Message.objects.filter(thread=thread, direction=Direction.IN, channel__isnull=False)
        .exclude(kind__in=NOT_A_REPLY_SOURCE)
        .select_related("channel")
        .order_by("-created_at", "-id")
        .first()
    )
    return latest.channel if latest else None


def _recipient(*, thread: Thread, channel, adapter, latest: list[Message] | None = None) -> Identity:
    """The customer's address on this channel: the one they last used on it, else any."""
    found = None
    if latest is not None:
        found = next((m for m in latest if m.channel_id == channel.pk and m.identity_id is not None), None)
    if found is None and (latest is None or len(latest) == _LATEST_INBOUND):
        found = (
            Message.objects.filter(
                thread=thread, channel=channel, direction=Direction.IN, identity__isnull=False
            )
            .select_related("identity")
            .order_by("-created_at", "-id")
            .first()
        )
    identity = identity_reaching(
        customer_id=thread.customer_id, channel=channel, adapter=adapter, last_inbound=found
    )
    if identity is not None:
        return identity
    raise ValidationError(
        f"This customer has no address {channel.name} can reach "
        f"(it needs one of: {', '.join(adapter.identity_kinds)})."
    )


def _last_inbound_at(latest: list[Message] | None, *, channel, recipient: Identity) -> datetime | None:
    """When the customer last wrote on `channel` from `recipient`, as the thread's latest messages show.

    The message the adapter's own window query would find (same order; an
    address's messages are on its customer's thread), so it need not run it.
    """
    for message in latest or ():
        if message.channel_id == channel.pk and message.identity_id == recipient.pk:
            return message.provider_timestamp or message.created_at
    return None


def reply_fallback(*, channel, recipient: Identity):
    """(email channel, email address) to answer on instead, when the customer has left
    `channel` (a web-chat visitor who closed the page) and gave us an email; else None."""
    from channels_adapters.models import Channel, ChannelKind

    try:
        adapter = adapter_for(channel.kind)
    except UnsupportedChannel:
        return None
    if adapter.recipient_present(channel, recipient) is not False:
        return None
    email = (
        Identity.objects.filter(customer_id=recipient.customer_id, kind="email")
        .order_by("-created_at")
        .first()
    )
    if email is None:
        return None
    emails = Channel.objects.filter(kind=ChannelKind.EMAIL, is_active=True).defer("credentials")
    preferred = (channel.settings or {}).get("email_channel") if isinstance(channel.settings, dict) else None
    target = (
        emails.filter(pk=preferred).first() if str(preferred or "").isdigit() else None
    ) or emails.order_by("name").first()
    return (target, email) if target else None


def send_reply(
    *,
    case: Case,
    author_user,
    body: str,
    channel=None,
    identity: Identity | None = None,
    attachments: list[dict] | None = None,
    meta: dict | None = None,
) -> Message:
    """An agent answers: the message is queued now and sent by a worker after commit.

    `meta` carries channel options the adapter understands (a WhatsApp template).
    """
    return _queue_outbound(
        case=case,
        author=Author.AGENT,
        author_user=author_user,
        body=body,
        channel=channel,
        identity=identity,
        attachments=attachments,
        meta=meta,
    )


def send_automatic(
    *,
    case: Case,
    body: str,
    channel=None,
    identity: Identity | None = None,
    meta: dict | None = None,
) -> Message:
    """A bot's message (survey, auto-reply): sent like a reply, never counted as one."""
    return _queue_outbound(
        case=case,
        author=Author.BOT,
        author_user=None,
        body=body,
        channel=channel,
        identity=identity,
        attachments=None,
        meta=meta,
    )


def _queue_outbound(*, case, author, author_user, body, channel, identity, attachments, meta) -> Message:
    body = (body or "").strip()
    if not body and not attachments and not (meta or {}).get("template"):
        raise ValidationError(_t("A reply needs text or an attachment."))
    thread = case.thread
    chosen = channel is not None
    latest = _latest_inbound(thread) if channel is None or identity is None else None
    channel = channel or _reply_channel(thread, latest) or case.origin_channel
    if channel is None:
        raise ValidationError(_t("This customer has never written on a channel we can answer on."))
    if not channel.is_active:
        raise ValidationError(_t("The channel %(name)s is switched off.") % {"name": channel.name})
    try:
        adapter = adapter_for(channel.kind)
    except UnsupportedChannel as exc:
        raise ValidationError(str(exc)) from exc
    recipient = identity or _recipient(thread=thread, channel=channel, adapter=adapter, latest=latest)
    if not chosen and identity is None:
        # Nobody picked the channel: a customer who has left it is answered where they are.
        fallback = reply_fallback(channel=channel, recipient=recipient)
        if fallback is not None:
            channel, recipient = fallback
            adapter = adapter_for(channel.kind)
    if recipient.customer_id != thread.customer_id:
        raise ValidationError(_t("That address belongs to another customer."))
    if recipient.kind not in adapter.identity_kinds or not adapter.reaches(channel, recipient):
        raise ValidationError(
            _t("%(channel)s cannot reach a %(kind)s address.")
            % {"channel": channel.name, "kind": recipient.kind}
        )
    try:
        adapter.check_outbound(
            channel,
            thread=thread,
            recipient=recipient,
            meta=meta or {},
            last_inbound_at=_last_inbound_at(latest, channel=channel, recipient=recipient),
        )
    except OutboundRefused as exc:
        raise ValidationError(str(exc)) from exc

    from conversations.batches import sends_wake

    message = Message(
        thread=thread,
        case=case,
        channel=channel,
        identity=recipient,
        direction=Direction.OUT,
        kind=MessageKind.MEDIA if attachments and not body else MessageKind.TEXT,
        author=author,
        author_user=author_user,
        body=body,
        attachments=attachments or [],
        meta=meta or {},
        status=DeliveryStatus.QUEUED,
    )
    with transaction.atomic():
        now = timezone.now()
        _message_write(message=message, thread=thread, case=case, now=now)
        signals.message_event_emit("message.created", message, customer_id=thread.customer_id)
        transaction.on_commit(lambda: sends_wake(message_id=message.pk))
        transaction.on_commit(lambda: signals.message_announce(message, case))
    return message


def _message_write(*, message: Message, thread: Thread, case: Case, now: datetime) -> None:
    """The queued message written, its thread locked first and its case touched: two statements.

    The thread first, as an inbound message takes it (thread, then case): a
    reply written while the customer writes waits instead of deadlocking
    (bench/webchat.py). The case is not a response yet: it counts once the
    provider accepts it (case_response_record), so a reply that never goes out
    leaves the customer waiting.
    """
    from conversations.services import _thread_lock_touch  # services re-exports this module's writes

    message.created_at = now
    locked = _thread_lock_touch(customer_id=thread.customer_id, now=now)
    if locked is None or locked.pk != thread.pk:  # merged away since the caller read the case
        raise Thread.DoesNotExist(f"No thread {thread.pk} for customer {thread.customer_id}")
    thread.last_message_at = now
    case.last_message_at = case.updated_at = now
    if connection.vendor != "postgresql":
        message.save(force_insert=True)
        case.save(update_fields=["last_message_at", "updated_at"])
        return
    fields, sql = _insert_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [*insert_values(message, fields), now, now, case.pk])
        message.pk, touched = cursor.fetchone()
    if not touched:
        raise Case.DoesNotExist(f"Case {case.pk} is gone")
    message._state.adding, message._state.db = False, connection.alias


@functools.cache
def _insert_statement():
    """The message's INSERT (conversations.inserts, as the inbound path's) and the case's
    touch in one statement."""
    fields, insert = insert_into(Message)
    cases = connection.ops.quote_name(Case._meta.db_table)
    sql = (
        f"WITH m AS ({insert} RETURNING id), "
        f"c AS (UPDATE {cases} SET last_message_at = %s, updated_at = %s "  # noqa: S608 - names from the models
        "WHERE id = %s RETURNING id) "
        "SELECT (SELECT id FROM m), (SELECT COUNT(*) FROM c)"
    )
    return fields, sql
