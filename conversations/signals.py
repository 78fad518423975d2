"""Hooks for other apps (KPIs, surveys, SLAs, automation), sent after commit.

case_changed(case, change, message): change is one of opened, reopened, woken,
  assigned, open, pending, snoozed, resolved, priority, labels; message is the
  customer's message that caused it when one did (an inbound message opening,
  reopening or waking the case), as the writer holds it, else None.
message_created(message): every new message (inbound, reply, note, system, echo).

Services announce their writes with `message_announce` / `case_announce` from
`transaction.on_commit`: the other apps hear first, then the agents' browsers.
A failing receiver is logged and never stops the push or the write.

domain_event(event, payload, ordering_key): sent synchronously INSIDE the
  writing transaction, for an outbox (the integrations app's webhooks) whose
  row must commit or roll back with the change. Events and payloads:
  docs/webhooks.md. Unlike the hooks above, a receiver's error propagates and
  rolls the write back: an event that cannot be recorded must not be lost
  silently. Receivers only write rows and queue work on commit; nothing leaves
  the process from here.
"""

import logging
from contextlib import contextmanager
from contextvars import ContextVar

from django.dispatch import Signal

from conversations import realtime

logger = logging.getLogger(__name__)

case_changed = Signal()
message_created = Signal()
domain_event = Signal()
# sla_event(case, event, target): "sla.warning" / "sla.breached" of "first_response" or
# "resolution", after commit (kpis.services.sla_check). survey_answered(answer): a
# survey answer was recorded, after commit (kpis.services.survey_answer_record).
sla_event = Signal()
survey_answered = Signal()
# agent_presence(user, state): an agent's inbox socket "connect"ed, "disconnect"ed or
# sent a "heartbeat" (conversations.consumers.AgentConsumer); sent synchronously.
agent_presence_changed = Signal()


# Work receivers put off to the end of a drain batch: flush function -> items.
_batch: ContextVar[dict | None] = ContextVar("announcements_batch", default=None)


@contextmanager
def announcements_batched():
    """A drain batch: receivers may gather their work per batch (batch_defer) instead of per message.

    At the end, each receiver's flush gets its items in the order they came;
    a failing flush is logged and never stops the others.
    """
    if _batch.get() is not None:
        yield
        return
    gathered: dict = {}
    token = _batch.set(gathered)
    try:
        yield
    finally:
        _batch.reset(token)
        for flush, items in gathered.items():
            try:
                flush(items)
            except Exception:  # noqa: BLE001 - as a failing receiver: logged, the others run
                logger.exception("Batched receiver %r failed", flush)


def batch_defer(flush, item) -> bool:
    """Hand `item` to `flush(items)` at the end of the batch being announced; False when none is."""
    gathered = _batch.get()
    if gathered is None:
        return False
    gathered.setdefault(flush, []).append(item)
    return True


def _send(signal: Signal, **kwargs) -> None:
    for receiver, result in signal.send_robust(sender=None, **kwargs):
        if isinstance(result, Exception):
            logger.error("Receiver %r failed", receiver, exc_info=result)


def message_announce(message, case=None) -> None:
    # The agents' screens first: what the receivers do (automation, outreach,
    # consent) is not what the message waits on to be seen.
    realtime.publish_message_created(message, case)
    _send(message_created, message=message)


def case_announce(case, *, change: str, message=None) -> None:
    _send(case_changed, case=case, change=change, message=message)
    realtime.publish_case_updated(case, change=change)


def sla_announce(case, *, event: str, target: str) -> None:
    _send(sla_event, case=case, event=event, target=target)


def agent_presence(user, state: str) -> None:
    _send(agent_presence_changed, user=user, state=state)


def survey_announce(answer) -> None:
    _send(survey_answered, answer=answer)


def domain_event_emit(event: str, data: dict, ordering_key: str) -> None:
    """Announce a change inside its transaction (see domain_event above)."""
    domain_event.send(sender=None, event=event, payload=data, ordering_key=ordering_key)


def _at(value):
    return value.isoformat() if value else None


def message_event_emit(event: str, message, *, channel=None, customer_id=None) -> None:
    """message.created / message.status_changed, from what the writer holds (no query).

    Only what the customer sees: internal notes and system events are never announced.
    """
    from conversations.models import MessageKind

    if message.kind in (MessageKind.NOTE, MessageKind.SYSTEM) or not domain_event.has_listeners():
        return
    channel = channel or message.channel
    data = {
        "id": message.pk,
        "case_id": message.case_id,
        "channel_id": message.channel_id,
        "channel_kind": channel.kind if channel else None,
        "direction": message.direction,
        "kind": message.kind,
        "author": message.author,
        "agent_id": message.author_user_id,
        "status": message.status,
        "external_id": message.external_id,
        "created_at": _at(message.created_at),
    }
    if event == "message.created":
        identity = message.identity
        data.update(
            customer_id=customer_id,
            body=message.body,
            attachments_count=len(message.attachments or []),
            address={"kind": identity.kind, "address": identity.address} if identity else None,
        )
    else:
        data.update(
            error=message.error or "",
            sent_at=_at(message.sent_at),
            delivered_at=_at(message.delivered_at),
            read_at=_at(message.read_at),
        )
    key = f"case:{message.case_id}" if message.case_id else f"thread:{message.thread_id}"
    domain_event_emit(event, {"message": data}, key)


def case_event_emit(event: str, case, *, customer_id=None, extra: dict | None = None) -> None:
    """case.opened / assigned / resolved / reopened; customer_id when case.thread is not loaded.

    extra: more top-level fields beside "case" (a rule's name for automation.rule_webhook).
    """
    if not domain_event.has_listeners():
        return
    data = {
        "id": case.pk,
        "customer_id": customer_id if customer_id is not None else case.thread.customer_id,
        "status": case.status,
        "assignee_id": case.assignee_id,
        "team_id": case.team_id,
        "priority": case.priority,
        "origin_channel_id": case.origin_channel_id,
        "subject": case.subject,
        "opened_at": _at(case.opened_at),
        "first_response_at": _at(case.first_response_at),
        "resolved_at": _at(case.resolved_at),
        "reopen_count": case.reopen_count,
    }
    domain_event_emit(event, {**(extra or {}), "case": data}, f"case:{case.pk}")
