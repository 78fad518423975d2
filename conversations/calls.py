"""Phone calls on the thread: the screen pop for a ringing call, and calls agents log by hand.

Call messages follow docs/contracts.md ("Message meta keys", calls): the KPIs
read `direction`, `call_status`, `answered` and `talk_seconds` from them.

Imports of conversations.services stay inside functions: this module is
loaded by the voice adapter while the adapter registry (which services
imports) is still being built.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _t

from conversations import realtime, signals
from conversations.models import Author, Case, CaseStatus, Direction, Message, MessageKind, Thread
from conversations.signals import message_created

logger = logging.getLogger(__name__)

CALL_INCOMING = "call.incoming"
SCREEN_POP_MESSAGES = 5


def screen_pop_payload(message: Message) -> dict:
    """What the agent who picks up needs at a glance: who, the case in progress, the last words."""
    thread = Thread.objects.select_related("customer").get(pk=message.thread_id)
    customer = thread.customer
    case = Case.objects.filter(pk=message.case_id).first() if message.case_id else None
    recent = (
        Message.objects.filter(thread_id=thread.pk)
        .exclude(pk=message.pk)
        .exclude(kind=MessageKind.SYSTEM)
        .select_related("channel")
        .order_by("-created_at", "-id")[:SCREEN_POP_MESSAGES]
    )
    return {
        "customer": {
            "id": customer.pk,
            "name": customer.name,
            "identities": [
                {"kind": kind, "address": address}
                for kind, address in customer.identities.order_by("pk").values_list("kind", "address")
            ],
        },
        "case": (
            {"id": case.pk, "status": case.status, "assignee": case.assignee_id} if case is not None else None
        ),
        "messages": [
            {
                "channel": m.channel.kind if m.channel_id else None,
                "direction": m.direction,
                "kind": m.kind,
                "text": m.body[:500],
                "created_at": m.created_at.isoformat(),
            }
            for m in recent
        ],
        "call": {
            "call_sid": message.meta.get("call_sid", ""),
            "from": message.meta.get("from", ""),
            "to": message.meta.get("to", ""),
            "message": message.pk,
            "thread": thread.pk,
        },
    }


@receiver(message_created, dispatch_uid="conversations.calls.screen_pop")
def _screen_pop_on_ringing_call(sender, message: Message, **kwargs):
    # Only the webhook of a call that is ringing pops a screen; a call first seen
    # through a late callback (already over) must not.
    if (
        message.kind == MessageKind.CALL
        and message.direction == Direction.IN
        and message.meta.get("call_status") == "ringing"
    ):
        try:
            realtime.publish(CALL_INCOMING, screen_pop_payload(message), case_id=message.case_id)
        except Exception:  # noqa: BLE001 - the call is stored; a lost pop must not fail its processing
            logger.exception("Could not build the screen pop for message %s", message.pk)


_DIRECTIONS = {"inbound": Direction.IN, "outbound": Direction.OUT}


def call_log(
    *,
    by,
    direction: str,
    number: str = "",
    talk_seconds: int = 0,
    note: str = "",
    case: Case | None = None,
    thread: Thread | None = None,
    channel=None,
    answered: bool | None = None,
    at=None,
) -> Message:
    """An agent records a call that did not go through Twilio (a desk phone, a mobile).

    `direction` is "inbound" (the customer called) or "outbound" (we called).
    The number, when given, is kept as one of the customer's phone identities.
    An answered outbound call is the agent's answer to the case, like a reply.
    """
    from customers.identity import phone_normalize
    from customers.services import identity_add

    if direction not in _DIRECTIONS:
        raise ValidationError(_t("A call is 'inbound' or 'outbound'."))
    if case is None and thread is None:
        raise ValidationError(_t("Log the call on a case or on a customer's thread."))
    if case is not None and thread is not None and case.thread_id != thread.pk:
        raise ValidationError(_t("That case belongs to another customer."))
    try:
        talk_seconds = int(talk_seconds or 0)
    except (TypeError, ValueError) as exc:
        raise ValidationError(_t("The call's duration must be a number of seconds.")) from exc
    if talk_seconds < 0:
        raise ValidationError(_t("The call's duration cannot be negative."))
    note = (note or "").strip()
    answered = talk_seconds > 0 if answered is None else answered
    number = phone_normalize(number) if number else ""
    thread = thread or case.thread
    now = at or timezone.now()

    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=thread.pk)
        if case is None:
            case = (
                Case.objects.filter(thread=thread).exclude(status=CaseStatus.RESOLVED).first()
                or Case.objects.filter(thread=thread).order_by("-opened_at").first()
            )
        identity = identity_add(customer=thread.customer, kind="phone", address=number) if number else None
        ours = (channel.credentials.get("phone_number", "") if channel is not None else "") or ""
        meta = {
            "direction": direction,
            "from": number if direction == "inbound" else ours,
            "to": ours if direction == "inbound" else number,
            "call_status": "completed" if answered else "no-answer",
            "answered": answered,
            "talk_seconds": talk_seconds if answered else 0,
            "logged_by": by.pk if by is not None else None,
            "manual": True,
        }
        message = Message.objects.create(
            thread=thread,
            case=case,
            channel=channel,
            identity=identity,
            direction=_DIRECTIONS[direction],
            kind=MessageKind.CALL,
            # Who spoke first: the customer's call is theirs, our call is the agent's.
            author=Author.CUSTOMER if direction == "inbound" else Author.AGENT,
            author_user=by,
            body=note,
            meta=meta,
            created_at=now,
        )
        if case is not None and not case.is_resolved and answered:
            # An answered call is a response: the customer is no longer waiting.
            from conversations.services import case_mark_answered

            case_mark_answered(case=case, now=now)
        Thread.objects.filter(pk=thread.pk).update(last_message_at=now)
        signals.message_event_emit("message.created", message, customer_id=thread.customer_id)
        transaction.on_commit(lambda: signals.message_announce(message, case))
    return message
