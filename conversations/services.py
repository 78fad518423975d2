"""Writes on threads, cases and messages.

Each public function validates, then does its writes in one transaction and
queues its side effects (pushes to agents, sends to providers) with
transaction.on_commit, so nothing leaves the process for data that is rolled
back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from channels_adapters.base import (
    OutboundRefused,
    PermanentSendError,
    Sender,
    TransientSendError,
)
from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations import realtime, signals
from conversations.models import (
    DELIVERY_RANK,
    NOT_A_REPLY_SOURCE,
    Author,
    Case,
    CaseStatus,
    DeliveryAttempt,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Thread,
)
from customers.models import Identity
from customers.services import identity_resolve

logger = logging.getLogger(__name__)


@dataclass
class InboundResult:
    message: Message
    created: bool


def _conf(name):
    return settings.HELPDESK[name]


def _case_for_inbound(*, thread: Thread, channel, now: datetime, subject: str) -> tuple[Case, str]:
    """The case an inbound message joins: the one in progress, a reopened one, or a new one."""
    case = Case.objects.filter(thread=thread).exclude(status=CaseStatus.RESOLVED).first()
    if case is not None:
        if case.status != CaseStatus.OPEN:
            # A customer's reply wakes a pending or snoozed case.
            case.status = CaseStatus.OPEN
            case.snoozed_until = None
            return case, "woken"
        return case, "continued"
    window = timedelta(days=_conf("REOPEN_WINDOW_DAYS"))
    last = Case.objects.filter(thread=thread, resolved_at__gte=now - window).order_by("-resolved_at").first()
    if last is not None:
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
) -> InboundResult:
    """A customer's message arrives: find them, append to their thread, open or reopen a case.

    Idempotent on (channel, external_id): a provider's retry returns the first message.
    """
    with transaction.atomic():
        # In the message's transaction: a message that fails leaves no customer
        # without it behind (a retry finds nothing half-written).
        identity = identity_resolve(kind=sender.kind, address=sender.address, name=sender.name)
        # The thread lock serializes messages of one customer, so two arriving
        # together cannot both open a case, and the duplicate check below is exact.
        thread = Thread.objects.select_for_update().get(customer_id=identity.customer_id)
        existing = Message.objects.filter(channel=channel, external_id=external_id).first()
        if existing is not None:
            # A duplicate writes nothing: not even the customer a new sender address
            # made above (the same id from another address would leave one empty).
            transaction.set_rollback(True)
            return InboundResult(existing, created=False)
        now = timezone.now()
        # An email's Subject names the case better than its first line.
        subject = str((meta or {}).get("subject") or text.strip().split("\n")[0])
        case, change = _case_for_inbound(thread=thread, channel=channel, now=now, subject=subject)
        case.waiting_since = case.waiting_since or now
        case.last_message_at = now
        case.save()
        message = Message.objects.create(
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
        Thread.objects.filter(pk=thread.pk).update(last_message_at=now)
        transaction.on_commit(lambda: signals.message_announce(message, case))
        if change != "continued":
            transaction.on_commit(lambda: signals.case_announce(case, change=change))
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
        transaction.on_commit(lambda: signals.message_announce(message, case))
    return InboundResult(message, created=True)


def case_mark_answered(*, case: Case, now: datetime) -> None:
    """Our side responded (a reply, an answered call): the customer is no longer waiting."""
    fields = ["waiting_since", "last_message_at", "updated_at"]
    if case.first_response_at is None:
        case.first_response_at = now
        fields.append("first_response_at")
    case.waiting_since = None
    case.last_message_at = now
    case.save(update_fields=fields)


def _reply_channel(thread: Thread):
    """By default, answer where the customer last wrote to us."""
    latest = (
        Message.objects.filter(thread=thread, direction=Direction.IN, channel__isnull=False)
        .exclude(kind__in=NOT_A_REPLY_SOURCE)
        .select_related("channel")
        .order_by("-created_at", "-id")
        .first()
    )
    return latest.channel if latest else None


def _recipient(*, thread: Thread, channel, identity_kinds) -> Identity:
    """The customer's address on this channel: the one they last used on it, else any."""
    latest = (
        Message.objects.filter(thread=thread, channel=channel, direction=Direction.IN, identity__isnull=False)
        .select_related("identity")
        .order_by("-created_at", "-id")
        .first()
    )
    if latest is not None and latest.identity.customer_id == thread.customer_id:
        return latest.identity
    identities = {i.kind: i for i in Identity.objects.filter(customer_id=thread.customer_id)}
    for kind in identity_kinds:
        if kind in identities:
            return identities[kind]
    raise ValidationError(
        f"This customer has no address {channel.name} can reach "
        f"(it needs one of: {', '.join(identity_kinds)})."
    )


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
        raise ValidationError("A reply needs text or an attachment.")
    thread = case.thread
    channel = channel or _reply_channel(thread) or case.origin_channel
    if channel is None:
        raise ValidationError("This customer has never written on a channel we can answer on.")
    if not channel.is_active:
        raise ValidationError(f"The channel {channel.name} is switched off.")
    try:
        adapter = adapter_for(channel.kind)
    except UnsupportedChannel as exc:
        raise ValidationError(str(exc)) from exc
    recipient = identity or _recipient(thread=thread, channel=channel, identity_kinds=adapter.identity_kinds)
    if recipient.customer_id != thread.customer_id:
        raise ValidationError("That address belongs to another customer.")
    if recipient.kind not in adapter.identity_kinds:
        raise ValidationError(f"{channel.name} cannot reach a {recipient.kind} address.")
    try:
        adapter.check_outbound(channel, thread=thread, recipient=recipient, meta=meta or {})
    except OutboundRefused as exc:
        raise ValidationError(str(exc)) from exc

    from conversations.tasks import message_deliver

    with transaction.atomic():
        now = timezone.now()
        message = Message.objects.create(
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
            created_at=now,
        )
        if author == Author.AGENT:
            case_mark_answered(case=case, now=now)
        Thread.objects.filter(pk=thread.pk).update(last_message_at=now)
        transaction.on_commit(lambda: message_deliver.delay(message.pk))
        transaction.on_commit(lambda: signals.message_announce(message, case))
    return message


def add_note(*, case: Case, author_user, body: str) -> Message:
    """An internal note: agents see it, the customer never does, KPIs ignore it."""
    body = (body or "").strip()
    if not body:
        raise ValidationError("A note needs text.")
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


def assign_case(*, case: Case, assignee=None, team=None, by=None) -> Case:
    """Give the case to an agent and/or a team; None clears it."""
    from helpdesk.roles import user_is_agent

    if assignee is not None and not user_is_agent(assignee):
        raise ValidationError(f"{_who(assignee)} is not an agent.")
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        changes = []
        if case.assignee_id != (assignee.pk if assignee else None):
            case.assignee = assignee
            changes.append(f"assigned to {_who(assignee)}" if assignee else "unassigned")
        if team is not None and case.team_id != team.pk:
            case.team = team
            changes.append(f"moved to team {team.name}")
        if not changes:
            return case
        case.save(update_fields=["assignee", "team", "updated_at"])
        system_event_add(
            thread=case.thread, case=case, text=f"Case {', '.join(changes)} by {_who(by)}", by=by
        )
        transaction.on_commit(lambda: signals.case_announce(case, change="assigned"))
    return case


def set_case_status(*, case: Case, status: str, by=None, snoozed_until: datetime | None = None) -> Case:
    if status not in CaseStatus.values:
        raise ValidationError(f"Unknown status '{status}'.")
    now = timezone.now()
    if status == CaseStatus.SNOOZED and (snoozed_until is None or snoozed_until <= now):
        raise ValidationError("Snoozing needs a time in the future.")
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        previous = case.status
        if previous == status and status != CaseStatus.SNOOZED:
            return case
        if previous == CaseStatus.RESOLVED:
            other = (
                Case.objects.filter(thread_id=case.thread_id)
                .exclude(status=CaseStatus.RESOLVED)
                .exclude(pk=case.pk)
                .first()
            )
            if other is not None:
                raise ValidationError(
                    f"Case #{other.pk} is already in progress for this customer; "
                    "continue there instead of reopening."
                )
            case.reopen_count += 1
            case.resolved_at = None
        case.status = status
        case.snoozed_until = snoozed_until if status == CaseStatus.SNOOZED else None
        if status == CaseStatus.RESOLVED:
            case.resolved_at = now
            case.waiting_since = None
        case.save()
        label = f"snoozed until {snoozed_until:%Y-%m-%d %H:%M}" if snoozed_until else status
        system_event_add(thread=case.thread, case=case, text=f"Case {label} by {_who(by)}", by=by)
        transaction.on_commit(lambda: signals.case_announce(case, change=status))
    return case


def cases_snooze_wake(*, now: datetime | None = None) -> int:
    """Snoozed cases whose time has come go back to open, in front of the agents."""
    now = now or timezone.now()
    woken = 0
    due = Case.objects.filter(status=CaseStatus.SNOOZED, snoozed_until__lte=now).values_list("pk", flat=True)
    for case_id in list(due[:500]):
        with transaction.atomic():
            case = (
                Case.objects.select_for_update(skip_locked=True)
                .filter(pk=case_id, status=CaseStatus.SNOOZED, snoozed_until__lte=now)
                .select_related("thread")
                .first()
            )
            if case is None:  # a reply woke it meanwhile, or another beat run has it
                continue
            case.status = CaseStatus.OPEN
            case.snoozed_until = None
            case.save(update_fields=["status", "snoozed_until", "updated_at"])
            system_event_add(thread=case.thread, case=case, text="Snooze ended: case open again")
            transaction.on_commit(lambda case=case: signals.case_announce(case, change="woken"))
            woken += 1
    return woken


_STATUS_TIME_FIELD = {
    DeliveryStatus.SENT: "sent_at",
    DeliveryStatus.DELIVERED: "delivered_at",
    DeliveryStatus.READ: "read_at",
}


def message_status_update(
    *,
    channel,
    external_id: str,
    status: str,
    error: str = "",
    at: datetime | None = None,
    message_id: int | None = None,
) -> bool:
    """A provider's delivery callback. Status only moves forward; returns whether it moved.

    `message_id` is our own id echoed by the provider (Twilio's callback URL,
    WhatsApp's biz_opaque_callback_data, the API channel): it settles a send
    whose answer we never got, so an interrupted send is not shown as failed
    nor sent a second time.
    """
    if status == DeliveryStatus.FAILED:
        allowed_from = [DeliveryStatus.QUEUED, DeliveryStatus.UNKNOWN, DeliveryStatus.SENT]
    elif status in DELIVERY_RANK and status != DeliveryStatus.UNKNOWN:
        allowed_from = [s for s, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[status]]
    else:
        raise ValidationError(f"Unknown delivery status '{status}'.")
    values = {"status": status}
    if status == DeliveryStatus.FAILED:
        values["error"] = error or "The provider reported the message as not delivered."
    elif status != DeliveryStatus.QUEUED:
        values[_STATUS_TIME_FIELD[status]] = at or timezone.now()
    with transaction.atomic():
        if message_id is not None and _message_reconcile(
            channel=channel, message_id=message_id, external_id=external_id, values=values
        ):
            return True
        if external_id:
            target = Q(external_id=external_id)
        elif message_id is not None:
            target = Q(pk=message_id, direction=Direction.OUT)
        else:
            return False
        messages = Message.objects.filter(target, channel=channel)
        updated = messages.filter(status__in=allowed_from).update(**values)
        if updated:
            message = messages.get()
            transaction.on_commit(lambda: realtime.publish_message_updated(message))
    return bool(updated)


def _message_reconcile(*, channel, message_id: int, external_id: str, values: dict) -> bool:
    """A callback names a message of ours that has no outcome yet: the provider's word is the outcome.

    Only for a send in flight or interrupted (or queued again after one: the
    provider has it, the resend must not go out). Anything else follows the
    external id like every callback.
    """
    message = (
        Message.objects.select_for_update()
        .filter(pk=message_id, channel=channel, direction=Direction.OUT)
        .first()
    )
    if message is None or values["status"] == DeliveryStatus.QUEUED:
        return False
    undecided = message.status == DeliveryStatus.UNKNOWN or (
        message.status == DeliveryStatus.QUEUED
        and (message.send_claimed_at is not None or values["status"] != DeliveryStatus.FAILED)
    )
    if not undecided:
        return False
    values = {**values, "send_claimed_at": None, "next_attempt_at": None}
    if values["status"] != DeliveryStatus.FAILED:
        values["error"] = ""
        values.setdefault("sent_at", values.get("delivered_at") or values.get("read_at") or timezone.now())
    if external_id and not message.external_id:
        values["external_id"] = external_id
        _echo_fold(channel_id=channel.pk, external_id=external_id, message_id=message.pk, values=values)
    Message.objects.filter(pk=message.pk).update(**values)
    outcome = (
        DeliveryAttempt.Outcome.FAILED
        if values["status"] == DeliveryStatus.FAILED
        else DeliveryAttempt.Outcome.SENT
    )
    DeliveryAttempt.objects.filter(
        message=message, outcome__in=[DeliveryAttempt.Outcome.PENDING, DeliveryAttempt.Outcome.UNKNOWN]
    ).update(
        outcome=outcome,
        finished_at=timezone.now(),
        error=gettext("Outcome reported by the provider's status callback."),
    )
    for field, value in values.items():
        setattr(message, field, value)
    transaction.on_commit(lambda: realtime.publish_message_updated(message))
    return True


def message_status_watermark(*, channel, recipient: Sender, status: str, watermark: datetime) -> int:
    """A receipt that covers everything sent to one person up to a time (Messenger)."""
    from customers.identity import identity_normalize

    if status not in (DeliveryStatus.DELIVERED, DeliveryStatus.READ):
        raise ValidationError(f"A watermark receipt cannot mean '{status}'.")
    address = identity_normalize(recipient.kind, recipient.address)
    allowed_from = [s for s, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[status]]
    with transaction.atomic():
        messages = list(
            Message.objects.filter(
                channel=channel,
                direction=Direction.OUT,
                identity__kind=recipient.kind,
                identity__address=address,
                status__in=allowed_from,
                created_at__lte=watermark,
            ).exclude(status=DeliveryStatus.QUEUED)
        )
        if not messages:
            return 0
        Message.objects.filter(pk__in=[m.pk for m in messages]).update(
            status=status, **{_STATUS_TIME_FIELD[status]: watermark}
        )
        for message in messages:
            message.status = status
            transaction.on_commit(lambda m=message: realtime.publish_message_updated(m))
    return len(messages)


def message_update(
    *,
    channel,
    external_id: str,
    text: str | None = None,
    kind: str | None = None,
    meta: dict | None = None,
    attachments: list[dict] | None = None,
    at: datetime | None = None,
) -> Message | None:
    """Later news about a message we have: edits keep the old text, meta is merged."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(channel=channel, external_id=external_id).first()
        if message is None:
            return None
        merged = {**message.meta, **(meta or {})}
        if text is not None and text != message.body:
            merged["edits"] = [
                *message.meta.get("edits", []),
                {"text": message.body, "until": (at or timezone.now()).isoformat()},
            ]
            message.body = text
        if kind:
            message.kind = kind
        if attachments:
            message.attachments = [*message.attachments, *attachments]
        message.meta = merged
        message.save(update_fields=["body", "kind", "meta", "attachments"])
        transaction.on_commit(lambda: realtime.publish_message_updated(message))
    return message


# Outbound delivery ---------------------------------------------------------


@dataclass
class DeliveryOutcome:
    outcome: str  # sent, retry, failed, skipped
    retry_in: float | None = None


def _backoff(attempt: int, retry_after: float | None) -> float:
    delay = _conf("OUTBOUND_BACKOFF_SECONDS") * (2 ** (attempt - 1))
    if retry_after:
        delay = max(delay, retry_after)
    return min(delay, _conf("OUTBOUND_BACKOFF_MAX_SECONDS"))


def message_deliver(*, message_id: int, worker: str = "") -> DeliveryOutcome:
    """Hand one queued message to its provider, at most once.

    Check-and-mark under a row lock: the claim is committed before the network
    call, so a second task for the same message (a redrive, a duplicate
    delivery from the broker) finds it claimed and does nothing. `worker` (the
    Celery node) is kept on the attempt, so that node's restart knows which
    sends it cut short.
    """
    now = timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("channel", "identity", "thread")
            .filter(pk=message_id)
            .first()
        )
        if (
            message is None
            or message.direction != Direction.OUT
            or message.status != DeliveryStatus.QUEUED
            or message.send_claimed_at is not None
            or (message.next_attempt_at and message.next_attempt_at > now + timedelta(seconds=1))
        ):
            return DeliveryOutcome("skipped")
        message.send_claimed_at = now
        message.attempts += 1
        message.save(update_fields=["send_claimed_at", "attempts"])
        # Numbers go on across an agent's Retry (which starts `attempts` again).
        last = DeliveryAttempt.objects.filter(message=message).order_by("-number").first()
        attempt = DeliveryAttempt.objects.create(
            message=message, number=(last.number + 1) if last else 1, started_at=now, worker=worker[:200]
        )

    retry_in = None
    external_id = None
    try:
        adapter = adapter_for(message.channel.kind)
        if message.identity is None:
            raise PermanentSendError("The message has no recipient address.")
        result = adapter.send(message.channel, message, message.identity)
        outcome, reason, external_id = "sent", "", result.external_id
    except UnsupportedChannel as exc:
        outcome, reason = "failed", str(exc)
    except PermanentSendError as exc:
        outcome, reason = "failed", exc.reason
    except OutboundRefused as exc:
        outcome, reason = "failed", str(exc)
    except TransientSendError as exc:
        outcome, reason = "retry", exc.reason
        retry_in = _backoff(message.attempts, exc.retry_after)
    except Exception as exc:  # noqa: BLE001 - an adapter bug must not lose the message
        logger.exception("Unexpected error sending message %s", message_id)
        outcome, reason = "retry", f"Unexpected error while sending: {exc}"
        retry_in = _backoff(message.attempts, None)
    if outcome == "retry" and message.attempts >= _conf("OUTBOUND_MAX_ATTEMPTS"):
        outcome = "failed"
        reason = f"Gave up after {message.attempts} attempts. Last error: {reason}"
        retry_in = None

    finished = timezone.now()
    values = {"send_claimed_at": None}
    if outcome == "sent":
        values.update(status=DeliveryStatus.SENT, external_id=external_id, sent_at=finished, error="")
    elif outcome == "failed":
        values.update(status=DeliveryStatus.FAILED, error=reason)
    else:
        values.update(
            error=f"Retrying (attempt {message.attempts} failed): {reason}",
            next_attempt_at=finished + timedelta(seconds=retry_in),
        )
    with transaction.atomic():
        if outcome == "sent" and external_id:
            _echo_fold(
                channel_id=message.channel_id, external_id=external_id, message_id=message_id, values=values
            )
        # Still ours: the claim, or an "outcome unknown" given up on this very
        # attempt (a send slower than the claim timeout) that the real answer settles.
        # A status callback that settled it already wins: it may be past "sent".
        Message.objects.filter(pk=message_id).filter(
            Q(send_claimed_at=now) | Q(status=DeliveryStatus.UNKNOWN, attempts=message.attempts)
        ).update(**values)
        DeliveryAttempt.objects.filter(pk=attempt.pk).update(
            finished_at=finished,
            outcome={"sent": "sent", "failed": "failed", "retry": "retry"}[outcome],
            error=reason,
            duration_ms=int((finished - now).total_seconds() * 1000),
        )
        for field, value in values.items():
            setattr(message, field, value)
        transaction.on_commit(lambda: realtime.publish_message_updated(message))
    return DeliveryOutcome(outcome, retry_in)


def _echo_fold(*, channel_id: int, external_id: str, message_id: int, values: dict) -> None:
    """The provider's echo of this very send can arrive before the send returns.

    It was recorded as an echo under the provider's id; it is this message, so it
    gives way (keeping any receipt it already got) instead of making a duplicate.
    """
    echo = (
        Message.objects.select_for_update()
        .filter(channel_id=channel_id, external_id=external_id)
        .exclude(pk=message_id)
        .first()
    )
    if echo is None or not echo.meta.get("echo"):
        return
    if DELIVERY_RANK.get(echo.status, 0) > DELIVERY_RANK[DeliveryStatus.SENT]:
        values["status"] = echo.status
        for stamp in ("delivered_at", "read_at"):
            if getattr(echo, stamp, None):
                values[stamp] = getattr(echo, stamp)
    echo_id, case_id = echo.pk, echo.case_id
    echo.delete()
    transaction.on_commit(
        lambda: realtime.publish("message.deleted", {"id": echo_id}, case_id=case_id, everyone=True)
    )


def message_retry(*, message: Message, by=None, confirmed: bool = False) -> Message:
    """An agent retries a failed send: it goes back to the queue as a fresh delivery.

    A send whose outcome is unknown may be on the customer's phone already:
    it goes again only once the agent confirms. It keeps its id, so the
    provider's idempotency key (where it has one: the API channel) and our
    reference in callbacks are those of the first try, and a late callback of
    that try still settles it.
    """
    from conversations.tasks import message_deliver

    with transaction.atomic():
        current = (
            Message.objects.select_for_update()
            .filter(pk=message.pk, direction=Direction.OUT)
            .values_list("status", flat=True)
            .first()
        )
        if current not in (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN):
            raise ValidationError(gettext("Only a failed message can be retried."))
        if current == DeliveryStatus.UNKNOWN and not confirmed:
            raise ValidationError(
                gettext(
                    "This message may already have reached the customer. "
                    "Confirm that you want to send it again."
                )
            )
        Message.objects.filter(pk=message.pk).update(
            status=DeliveryStatus.QUEUED, error="", next_attempt_at=None, attempts=0, send_claimed_at=None
        )
        transaction.on_commit(lambda: message_deliver.delay(message.pk))
    message.refresh_from_db()
    return message


INTERRUPTED = gettext_lazy(
    "The send was interrupted and its outcome is unknown: the customer may have received it. "
    "Check with them before sending it again."
)


RESENT = gettext_lazy(
    "The send was interrupted; sending it again with the same idempotency key, which the receiver "
    "uses to drop a repeat."
)


def _messages_outcome_unknown(*, message_ids) -> tuple[list[int], list[int]]:
    """Claimed sends whose worker died: the provider may or may not have them. Never resent blindly.

    Where the receiver drops a repeat by our idempotency key (the channel says
    so), the send simply goes again; elsewhere the agent decides. Returns
    (unknown, resent).
    """
    from conversations.tasks import message_deliver

    now = timezone.now()
    with transaction.atomic():
        messages = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel")
            .filter(pk__in=list(message_ids), status=DeliveryStatus.QUEUED, send_claimed_at__isnull=False)
        )
        if not messages:
            return [], []
        resend = [m for m in messages if _dedupes_resends(m.channel)]
        unknown = [m for m in messages if m not in resend]
        for group, status, reason in (
            (unknown, DeliveryStatus.UNKNOWN, str(INTERRUPTED)),
            (resend, DeliveryStatus.QUEUED, str(RESENT)),
        ):
            ids = [m.pk for m in group]
            if not ids:
                continue
            Message.objects.filter(pk__in=ids).update(
                status=status, send_claimed_at=None, next_attempt_at=None, error=reason
            )
            DeliveryAttempt.objects.filter(
                message_id__in=ids, outcome=DeliveryAttempt.Outcome.PENDING
            ).update(outcome=DeliveryAttempt.Outcome.UNKNOWN, finished_at=now, error=reason)
            for message in group:
                message.status, message.send_claimed_at, message.error = status, None, reason
                transaction.on_commit(lambda m=message: realtime.publish_message_updated(m))
                if status == DeliveryStatus.QUEUED:
                    transaction.on_commit(lambda pk=message.pk: message_deliver.delay(pk))
    return [m.pk for m in unknown], [m.pk for m in resend]


def _dedupes_resends(channel) -> bool:
    try:
        return adapter_for(channel.kind).dedupes_resends(channel)
    except UnsupportedChannel:
        return False


def outbound_redrive() -> dict:
    """Beat task body: re-enqueue messages left queued, report sends with no outcome."""
    from conversations.tasks import message_deliver

    now = timezone.now()
    stuck_before = now - timedelta(seconds=_conf("OUTBOUND_STUCK_AFTER_SECONDS"))
    stuck = list(
        Message.objects.filter(
            direction=Direction.OUT,
            status=DeliveryStatus.QUEUED,
            send_claimed_at__isnull=True,
            created_at__lt=stuck_before,
        )
        .exclude(next_attempt_at__gte=stuck_before)
        .values_list("pk", flat=True)[:1000]
    )
    for pk in stuck:
        message_deliver.delay(pk)
    # A claim this old outlived every client timeout: its worker died mid-send.
    lost = Message.objects.filter(
        status=DeliveryStatus.QUEUED,
        send_claimed_at__lt=now - timedelta(seconds=_conf("OUTBOUND_CLAIM_TIMEOUT_SECONDS")),
    ).values_list("pk", flat=True)[:1000]
    unknown, resent = _messages_outcome_unknown(message_ids=lost)
    return {"requeued": len(stuck), "interrupted": len(unknown), "resent": len(resent)}


def outbound_recover(*, worker: str, started_at: datetime | None = None) -> dict:
    """A worker node starts: settle what its previous run left, at once rather than at the next beat.

    Sends that node had claimed before this start were cut short (a node
    name runs once at a time): outcome unknown now, not after the claim
    timeout. Queued messages go back to the broker: the tasks a killed worker
    had reserved (its prefetch, its retries' countdowns) come back only after
    the broker's visibility timeout. A message still queued on the broker is
    enqueued twice; the claim sends it once.
    """
    from conversations.tasks import message_deliver

    started_at = started_at or timezone.now()
    cut_short = []
    if worker:
        cut_short = DeliveryAttempt.objects.filter(
            worker=worker[:200], outcome=DeliveryAttempt.Outcome.PENDING, started_at__lt=started_at
        ).values_list("message_id", flat=True)[:1000]
    interrupted, resent = _messages_outcome_unknown(message_ids=cut_short)
    queued = list(
        Message.objects.filter(
            direction=Direction.OUT, status=DeliveryStatus.QUEUED, send_claimed_at__isnull=True
        )
        .exclude(pk__in=resent)  # queued already
        .values_list("pk", "next_attempt_at")[:1000]
    )
    now = timezone.now()
    for pk, next_attempt_at in queued:
        if next_attempt_at and next_attempt_at > now:
            message_deliver.apply_async((pk,), eta=next_attempt_at)
        else:
            message_deliver.delay(pk)
    return {"requeued": len(queued), "interrupted": len(interrupted), "resent": len(resent)}


# Inbox (agent UI) ---------------------------------------------------------------


def case_mark_read(*, case: Case, user) -> None:
    """The agent has seen the case up to now: its unread marker goes away for them."""
    from conversations.models import CaseRead

    # One upsert: this runs on every page view of a case.
    CaseRead.objects.bulk_create(
        [CaseRead(case=case, user=user, read_at=timezone.now())],
        update_conflicts=True,
        unique_fields=["case", "user"],
        update_fields=["read_at"],
    )


def case_priority_set(*, case: Case, priority: int, by=None) -> Case:
    from conversations.models import Priority

    if priority not in Priority.values:
        raise ValidationError(f"Unknown priority '{priority}'.")
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.priority == priority:
            return case
        case.priority = priority
        case.save(update_fields=["priority", "updated_at"])
        system_event_add(
            thread=case.thread,
            case=case,
            text=f"Priority set to {Priority(priority).label} by {_who(by)}",
            by=by,
        )
        transaction.on_commit(lambda: signals.case_announce(case, change="priority"))
    return case


def case_labels_set(*, case: Case, labels, by=None) -> Case:
    """Replace the case's labels; the timeline says what was added and removed."""
    labels = list(labels)
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        before = {label.pk: label.name for label in case.labels.all()}
        after = {label.pk: label.name for label in labels}
        added = sorted(name for pk, name in after.items() if pk not in before)
        removed = sorted(name for pk, name in before.items() if pk not in after)
        if not added and not removed:
            return case
        case.labels.set(labels)
        case.save(update_fields=["updated_at"])
        parts = [f"+{n}" for n in added] + [f"-{n}" for n in removed]
        system_event_add(thread=case.thread, case=case, text=f"Labels {' '.join(parts)} by {_who(by)}", by=by)
        transaction.on_commit(lambda: signals.case_announce(case, change="labels"))
    return case


def _mentioned_users(body: str):
    import re

    from django.contrib.auth import get_user_model

    from helpdesk.roles import user_is_agent

    names = {m.lower() for m in re.findall(r"(?<![\w.])@([\w.+-]+)", body)}
    if not names:
        return []
    from django.db.models.functions import Lower

    # Usernames keep their capitals ("Carla"); what was typed is compared lower-cased on both sides.
    users = (
        get_user_model()
        .objects.annotate(username_lower=Lower("username"))
        .filter(is_active=True, username_lower__in=names)
        .prefetch_related("groups")
    )
    return [u for u in users if user_is_agent(u)]


def case_note_add(*, case: Case, author_user, body: str) -> Message:
    """An internal note; each @username of a colleague in it notifies that colleague.

    Only colleagues who may see the case are notified: a mention must not carry
    the note's text to someone the case is hidden from."""
    from conversations import visibility
    from conversations.models import Mention

    with transaction.atomic():
        note = add_note(case=case, author_user=author_user, body=body)
        mentioned = [
            u
            for u in _mentioned_users(note.body)
            if u.pk != getattr(author_user, "pk", None) and visibility.case_visible(user=u, case=case)
        ]
        Mention.objects.bulk_create([Mention(message=note, case=case, user=u) for u in mentioned])
        who = _who(author_user)
        for user in mentioned:
            transaction.on_commit(
                lambda u=user: realtime.publish(
                    "mention.created",
                    {"user": u.pk, "case": case.pk, "by": who, "text": note.body[:200]},
                    user_id=u.pk,
                )
            )
    return note


def mentions_mark_read(*, user, case: Case | None = None) -> int:
    from conversations.models import Mention

    mentions = Mention.objects.filter(user=user, read_at__isnull=True)
    if case is not None:
        mentions = mentions.filter(case=case)
    return mentions.update(read_at=timezone.now())


def canned_response_render(*, canned, customer, agent=None) -> str:
    """Fill a canned response's placeholders; unknown ones are left for the agent to see."""
    import re

    values = {
        "customer.first_name": customer.first_name if customer else "",
        "customer.name": (customer.name if customer else "") or "",
        "agent.first_name": (agent.first_name or agent.get_username()) if agent else "",
        "agent.name": (agent.get_full_name() or agent.get_username()) if agent else "",
    }

    def fill(match):
        key = match.group(1)
        return values[key] if key in values else match.group(0)

    return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", fill, canned.body)
