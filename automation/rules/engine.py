"""Runs the active rules of an event on a case, in order, with "stop" and a loop guard.

Loop guard: the events a rule's actions cause (its assignment is a "case
assigned") may trigger rules once more, one level down, and no further; and a
rule never fires twice in one chain. The chain is a context variable set
around the actions' transaction, whose after-commit hooks (where the core
announces those events) run inside it.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery

from automation.models import Rule
from automation.rules.actions import ActionContext, action_describe, actions_apply
from automation.rules.conditions import Facts, Test, conditions_compile
from conversations.models import Case, Direction, Message, MessageKind
from helpdesk.process_cache import ProcessCache

logger = logging.getLogger(__name__)

# Rules triggered by a rule's actions run; what *their* actions cause does not.
MAX_DEPTH = 1


@dataclass(frozen=True)
class _Chain:
    depth: int
    fired: frozenset


_chain: ContextVar[_Chain | None] = ContextVar("automation_rule_chain", default=None)


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    test: Test


rules_cache = ProcessCache(ttl_seconds=lambda: settings.HELPDESK_AUTOMATION["RULE_CACHE_SECONDS"])


def _load(event: str) -> list[CompiledRule]:
    compiled = []
    for rule in Rule.objects.filter(is_active=True, event=event).order_by("position", "pk"):
        try:
            compiled.append(CompiledRule(rule, conditions_compile(rule.conditions, match=rule.match)))
        except (KeyError, TypeError, ValueError):  # saved around the admin's validation
            logger.error("automation: rule %s has invalid conditions; skipped", rule.pk)
    return compiled


def rules_for(event: str) -> list[CompiledRule]:
    return rules_cache.get(event, lambda: _load(event))


def rules_run(
    *, event: str, case: Case, message=None, survey=None, now: datetime | None = None, rules=None
) -> list[Rule]:
    """The rules of `event` that matched the case, after running their actions."""
    chain = _chain.get()
    depth = chain.depth if chain else 0
    if depth > MAX_DEPTH:
        return []
    compiled = rules_for(event) if rules is None else rules
    if not compiled:
        return []
    facts = Facts(case=case, message=message, survey=survey, now=now)
    fired: list[Rule] = []
    seen = chain.fired if chain else frozenset()
    for item in compiled:
        rule = item.rule
        if rule.pk in seen or not item.test(facts):
            continue
        token = _chain.set(_Chain(depth + 1, seen | {rule.pk}))
        try:
            ctx = ActionContext(case=facts.case, source=_rule_source(rule), now=facts.now)
            with transaction.atomic():
                actions_apply(ctx=ctx, actions=rule.actions)
        finally:
            _chain.reset(token)
        fired.append(rule)
        seen = seen | {rule.pk}
        if rule.stop_processing:
            break
        # The next rules see the case as this one left it.
        facts = Facts(case=Case.objects.get(pk=case.pk), message=message, survey=survey, now=facts.now)
    return fired


def _rule_source(rule: Rule) -> str:
    from django.utils.translation import gettext as _

    return _("Rule '%(name)s'") % {"name": rule.name}


def rule_preview(*, rule: Rule, limit: int | None = None) -> list[dict]:
    """Which of the latest cases the rule's conditions match, and what it would do: reads only."""
    limit = limit or settings.HELPDESK_AUTOMATION["PREVIEW_CASES"]
    test = conditions_compile(rule.conditions, match=rule.match)
    would = [action_describe(a) for a in rule.actions]
    latest = (
        Message.objects.filter(case_id=OuterRef("pk"), direction=Direction.IN)
        .exclude(kind__in=(MessageKind.NOTE, MessageKind.SYSTEM))
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    cases = list(
        Case.objects.select_related("thread__customer", "origin_channel")
        .prefetch_related("labels")
        .annotate(latest_message_id=Subquery(latest))
        .order_by("-opened_at", "-pk")[:limit]
    )
    messages = Message.objects.select_related("channel").in_bulk(
        [c.latest_message_id for c in cases if c.latest_message_id]
    )
    hours: dict = {}
    rows = []
    for case in cases:
        facts = Facts(case=case, message=messages.get(case.latest_message_id), hours_cache=hours)
        if facts._message is None:
            facts.message = None  # no customer message: nothing to look up
        matched = test(facts)
        rows.append({"case": case, "matched": matched, "actions": would if matched else []})
    return rows
