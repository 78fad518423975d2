"""The automation app's entry points: what happens when the core announces a change.

Called from automation/receivers.py after the core's write committed. Order on
a new case: its rules ("case opened": routing to a team), then auto-assignment
within the team, then the "message received" rules of its first message, then
the out-of-hours reply.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from automation.assignment import LOAD_STATUSES, case_auto_assign, stale_cases_reassign, teams_drain
from automation.models import Rule, RuleEvent, RuleRun
from automation.out_of_hours import out_of_hours_reply
from automation.presence import presence_expire
from automation.rules.engine import rules_run
from conversations.models import Author, Case, Direction, MessageKind

logger = logging.getLogger(__name__)

_STATUS_EVENT = {"open", "pending", "snoozed", "resolved", "woken"}
# Changes after which an agent may have room for one more case.
_FREES_CAPACITY = {"assigned", "resolved", "snoozed"}

# A drain assigns, each assignment announces "assigned", whose handler would drain again:
# the inner one is skipped, the running loop goes on.
_draining: ContextVar[bool] = ContextVar("automation_draining", default=False)


def _drain(team_ids=None) -> None:
    if _draining.get():
        return
    token = _draining.set(True)
    try:
        teams_drain(team_ids=team_ids)
    finally:
        _draining.reset(token)


def case_change_handle(*, case: Case, change: str, message=None) -> None:
    """`message`: the customer's message that caused the change, as the inbound writer holds it.

    With it, the case the writer just committed is current unless a rule
    changed it, and the first message of an opened case is that message: no
    reading either again (this runs for every first contact).
    """
    if change in ("opened", "reopened"):
        fired = rules_run(event=RuleEvent.CASE_OPENED, case=case)
    elif change == "assigned":
        fired = rules_run(event=RuleEvent.CASE_ASSIGNED, case=case)
    elif change in _STATUS_EVENT:
        fired = rules_run(event=RuleEvent.STATUS_CHANGED, case=case)
    else:
        fired = []
    if fired or message is None:
        case = Case.objects.select_related("thread").filter(pk=case.pk).first()
        if case is None:
            return
    if case.team_id and case.assignee_id is None and case.status in LOAD_STATUSES:
        case_auto_assign(case_id=case.pk)
    if change in _FREES_CAPACITY:
        _drain()
    if change == "opened":
        # The first message waited for routing (message_handle): its rules and reply now.
        if message is not None:
            first = message
            first.case = case
        else:
            first = case.messages.filter(direction=Direction.IN).order_by("created_at", "pk").first()
        if first is not None:
            _message_rules(message=first, case=case)


def _is_customer_message(message) -> bool:
    return (
        message.direction == Direction.IN
        and message.author == Author.CUSTOMER
        and message.kind not in (MessageKind.NOTE, MessageKind.SYSTEM)
        and message.case_id is not None
    )


def message_handle(*, message) -> None:
    if not _is_customer_message(message):
        return
    # The case the core wrote with the message (receive_inbound): no query to read it again.
    case = message.case
    if case is None:
        return
    if case.opened_at == message.created_at and case.reopen_count == 0:
        return  # this message opened the case: handled after routing (case_change_handle)
    _message_rules(message=message, case=case)


def _message_rules(*, message, case: Case) -> None:
    if rules_run(event=RuleEvent.MESSAGE_RECEIVED, case=case, message=message):
        # The rules may have moved the case (its team decides the business hours).
        message.case = Case.objects.select_related("thread").get(pk=case.pk)
    out_of_hours_reply(message=message)


def sla_handle(*, case: Case, event: str, target: str) -> None:
    kind = RuleEvent.SLA_WARNING if event == "sla.warning" else RuleEvent.SLA_BREACHED
    case = Case.objects.select_related("thread").get(pk=case.pk)
    rules_run(event=kind, case=case)


def survey_handle(*, answer) -> None:
    case = Case.objects.select_related("thread").get(pk=answer.case_id)
    rules_run(event=RuleEvent.SURVEY_ANSWERED, case=case, survey=answer)


def rules_idle_run(*, now: datetime | None = None, limit: int = 500) -> int:
    """Beat: "case idle N minutes" fires once per quiet spell (a new message starts a new one)."""
    now = now or timezone.now()
    fired = 0
    for rule in Rule.objects.filter(is_active=True, event=RuleEvent.CASE_IDLE, idle_minutes__isnull=False):
        quiet = now - timedelta(minutes=rule.idle_minutes)
        # A run after the case's last message: this spell was handled.
        handled = RuleRun.objects.filter(
            rule=rule, case=OuterRef("pk"), ran_at__gt=OuterRef("last_message_at")
        )
        cases = (
            Case.objects.filter(status__in=LOAD_STATUSES, last_message_at__lte=quiet)
            .exclude(Exists(handled))
            .select_related("thread")
            .order_by("last_message_at")[:limit]
        )
        for case in cases:
            fired += _idle_fire(rule, case, now)
    return fired


def _idle_fire(rule: Rule, case: Case, now: datetime) -> int:
    key = case.last_message_at.isoformat()
    try:
        with transaction.atomic():
            RuleRun.objects.create(rule=rule, case=case, key=key, ran_at=now)
    except IntegrityError:
        return 0  # this quiet spell was handled already
    from automation.rules.engine import rules_for

    compiled = [c for c in rules_for(RuleEvent.CASE_IDLE) if c.rule.pk == rule.pk]
    return len(rules_run(event=RuleEvent.CASE_IDLE, case=case, now=now, rules=compiled))


def automation_sweep(*, now: datetime | None = None) -> dict:
    """Beat task body: presence expiry, offline reassignment, the queues, idle rules."""
    now = now or timezone.now()
    return {
        "expired": presence_expire(now=now),
        "reassigned": stale_cases_reassign(now=now),
        "assigned": teams_drain(),
        "idle": rules_idle_run(now=now),
    }
