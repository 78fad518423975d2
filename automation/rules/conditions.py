"""What a rule's conditions look at (Facts, read lazily) and the compiled test of each condition.

Conditions are compiled once per rule load (regular expressions included), and a
fact is read from the database only when some condition asks for it: 50 rules
on "message text contains" cost no query at all (bench/automation.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import cached_property

from django.conf import settings
from django.utils import timezone

from conversations.models import Case, Direction, Message, MessageKind
from customers.models import Identity
from helpdesk.process_cache import ProcessCache

# Business hours per team, read by "within business hours" on every message; cleared on
# save and delete (automation.receivers), like the rules themselves.
hours_cache = ProcessCache(ttl_seconds=lambda: settings.HELPDESK_AUTOMATION["RULE_CACHE_SECONDS"])

# What a condition costs to check: 0 reads what the event carries, 1 the customer
# (one query, shared), 2 a query of its own. Cheap ones run first, so "all" and
# "any" usually settle before any query (bench/automation.py).
_COST = {"customer_attribute": 1, "language": 1, "label": 2, "business_hours": 2}


class Facts:
    """One case at one moment, as the conditions see it. Reading a fact never writes."""

    def __init__(
        self,
        *,
        case: Case,
        message: Message | None = None,
        survey=None,
        now: datetime | None = None,
        hours_cache: dict | None = None,
    ):
        self.case = case
        self._message = message
        self.survey = survey
        self.now = now or timezone.now()
        # Business hours per team, shared by the Facts of many cases (the preview).
        self._hours_cache = {} if hours_cache is None else hours_cache

    @cached_property
    def message(self) -> Message | None:
        """The inbound message the event is about, else the case's latest one from the customer."""
        if self._message is not None and self._message.direction == Direction.IN:
            return self._message
        return (
            Message.objects.filter(case_id=self.case.pk, direction=Direction.IN)
            .exclude(kind__in=(MessageKind.NOTE, MessageKind.SYSTEM))
            .select_related("channel")
            .order_by("-created_at", "-id")
            .first()
        )

    @cached_property
    def channel(self):
        if self.message is not None and self.message.channel_id:
            return self.message.channel
        return self.case.origin_channel if self.case.origin_channel_id else None

    @cached_property
    def text(self) -> str:
        return (self.message.body if self.message else "") or ""

    @cached_property
    def text_lower(self) -> str:
        return self.text.lower()

    @cached_property
    def customer(self):
        # An inbound message from the pipeline carries its identity and customer, read in
        # the message's own transaction (customers.services.identity_resolve): no query.
        message = self._message
        if (
            message is not None
            and Message.identity.is_cached(message)
            and message.identity is not None
            and Identity.customer.is_cached(message.identity)
            and Message.thread.is_cached(message)
            and message.identity.customer_id == message.thread.customer_id
        ):
            return message.identity.customer
        return self.case.thread.customer

    @cached_property
    def language(self) -> str:
        return fact_language(customer=self.customer, channel=self.channel, message=self.message)

    @cached_property
    def labels(self) -> set[str]:
        return {label.name for label in self.case.labels.all()}  # prefetched by the preview

    @cached_property
    def business_hours_open(self) -> bool:
        from kpis.services import business_hours_for, business_hours_now

        team_id = self.case.team_id
        if team_id not in self._hours_cache:
            # False, not None, for "no hours": the process cache does not keep None.
            self._hours_cache[team_id] = hours_cache.get(
                team_id, lambda: business_hours_for(team_id=team_id) or False
            )
        is_open, _ = business_hours_now(hours=self._hours_cache[team_id] or None, at=self.now)
        return is_open


def fact_language(*, customer, channel, message) -> str:
    """The customer's language: their attribute, what the channel detected, the channel's, ours."""
    supported = {code for code, _ in settings.LANGUAGES}
    for value in (
        (customer.attributes or {}).get("language") if customer else None,
        (message.meta or {}).get("language") if message else None,
        (channel.settings or {}).get("language")
        if channel is not None and isinstance(channel.settings, dict)
        else None,
    ):
        if isinstance(value, str) and value[:2].lower() in supported:
            return value[:2].lower()
    return settings.LANGUAGE_CODE[:2]


Test = Callable[[Facts], bool]


def _values(condition) -> list:
    value = condition.get("value")
    return value if isinstance(value, list) else [value]


def _compare(op: str, actual, values: list) -> bool:
    if op == "is":
        return actual in values
    if op == "is_not":
        return actual not in values
    if op == "gte":
        return actual is not None and actual >= values[0]
    if op == "lte":
        return actual is not None and actual <= values[0]
    return False


def _attr_test(condition) -> Test:
    key, op, values = condition["key"], condition["op"], _values(condition)

    def test(facts: Facts) -> bool:
        attributes = facts.customer.attributes or {}
        if op == "exists":
            return key in attributes
        if op == "not_exists":
            return key not in attributes
        actual = attributes.get(key)
        if op == "contains":
            return isinstance(actual, (str, list)) and any(v in actual for v in values)
        return _compare(op, actual, values)

    return test


def condition_compile(condition: dict) -> Test:
    field, op = condition["field"], condition["op"]
    values = _values(condition)
    if field == "text":
        if op == "matches":
            patterns = [re.compile(v, re.IGNORECASE) for v in values]
            return lambda f: any(p.search(f.text) for p in patterns)
        needles = [str(v).lower() for v in values]
        hit: Test = lambda f: any(n in f.text_lower for n in needles)  # noqa: E731
        return hit if op == "contains" else (lambda f: not hit(f))
    if field == "channel":
        return lambda f: _compare(op, f.channel.pk if f.channel else None, values)
    if field == "channel_kind":
        return lambda f: _compare(op, f.channel.kind if f.channel else None, values)
    if field == "language":
        return lambda f: _compare(op, f.language, [str(v).lower()[:2] for v in values])
    if field == "priority":
        return lambda f: _compare(op, f.case.priority, values)
    if field == "status":
        return lambda f: _compare(op, f.case.status, values)
    if field == "label":
        wanted = set(values)
        return (lambda f: bool(wanted & f.labels)) if op == "has" else (lambda f: not wanted & f.labels)
    if field in ("team", "assignee"):
        attr = f"{field}_id"
        if op == "is_empty":
            return lambda f: getattr(f.case, attr) is None
        if op == "is_set":
            return lambda f: getattr(f.case, attr) is not None
        return lambda f: _compare(op, getattr(f.case, attr), values)
    if field == "customer_attribute":
        return _attr_test(condition)
    if field == "business_hours":
        return lambda f: f.business_hours_open is condition["value"]
    if field == "case_new":
        # New: never answered and never reopened (docs/automation.md).
        return lambda f: (f.case.first_response_at is None and f.case.reopen_count == 0) is condition["value"]
    if field == "case_reopened":
        return lambda f: (f.case.reopen_count > 0) is condition["value"]
    if field == "survey_score":
        return lambda f: f.survey is not None and _compare(op, f.survey.score, values)
    if field == "survey_kind":
        return lambda f: f.survey is not None and f.survey.kind in values
    raise ValueError(f"unknown condition field {field!r}")  # validation keeps these out


def conditions_compile(conditions: list[dict], *, match: str) -> Test:
    ordered = sorted(conditions, key=lambda c: _COST.get(c.get("field"), 0))
    tests = [condition_compile(c) for c in ordered]
    if not tests:
        return lambda f: True
    if match == "any":
        return lambda f: any(t(f) for t in tests)
    return lambda f: all(t(f) for t in tests)
