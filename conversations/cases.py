"""Writes on cases from the inbox: assignment, status, snooze, priority, labels,
reads, internal notes with @mentions, canned responses."""

from __future__ import annotations

import logging
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _t

from conversations import realtime, signals
from conversations.models import (
    Case,
    CaseStatus,
    Message,
)
from conversations.services import _who, add_note, system_event_add

logger = logging.getLogger(__name__)


def assign_case(*, case: Case, assignee=None, team=None, by=None) -> Case:
    """Give the case to an agent and/or a team; None clears it."""
    from helpdesk.roles import user_is_agent

    if assignee is not None and not user_is_agent(assignee):
        raise ValidationError(_t("%(who)s is not an agent.") % {"who": _who(assignee)})
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
        signals.case_event_emit("case.assigned", case)
        transaction.on_commit(lambda: signals.case_announce(case, change="assigned"))
    return case


def set_case_status(*, case: Case, status: str, by=None, snoozed_until: datetime | None = None) -> Case:
    if status not in CaseStatus.values:
        raise ValidationError(_t("Unknown status '%(status)s'.") % {"status": status})
    now = timezone.now()
    if status == CaseStatus.SNOOZED and (snoozed_until is None or snoozed_until <= now):
        raise ValidationError(_t("Snoozing needs a time in the future."))
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
        if status == CaseStatus.RESOLVED or previous == CaseStatus.RESOLVED:
            signals.case_event_emit(
                "case.resolved" if status == CaseStatus.RESOLVED else "case.reopened", case
            )
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
    from conversations.relay import case_seen_relay

    case_seen_relay(case_id=case.pk)


def case_priority_set(*, case: Case, priority: int, by=None) -> Case:
    from conversations.models import Priority

    if priority not in Priority.values:
        raise ValidationError(_t("Unknown priority '%(priority)s'.") % {"priority": priority})
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
