"""Auto-assignment inside a team: round-robin or least loaded, among available agents under capacity.

Correct under concurrency: every assignment of a team takes its TeamRouting row
lock first, then the presence rows of the agents it chooses among (in pk order,
so two teams sharing an agent never deadlock), and counts the agents' open
cases under those locks. Two workers assigning at once are serialized on those
rows, so neither sees a count the other is about to change.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from automation.models import AgentPresence, AssignmentMode, TeamRouting
from automation.presence import available_q
from conversations.cases import assign_case
from conversations.models import Case, CaseStatus
from conversations.services import system_event_add
from helpdesk.roles import ROLE_GROUPS

logger = logging.getLogger(__name__)

# What counts against an agent's capacity, and what the assigner hands out.
LOAD_STATUSES = (CaseStatus.OPEN, CaseStatus.PENDING)


def agent_loads(*, user_ids) -> dict[int, int]:
    rows = (
        Case.objects.filter(assignee_id__in=list(user_ids), status__in=LOAD_STATUSES)
        .order_by()
        .values_list("assignee_id")
        .annotate(n=Count("pk"))
    )
    return dict(rows)


def _choose(*, routing: TeamRouting, now: datetime) -> int | None:
    """The agent who gets the team's next case, with the rows locked; None when nobody can."""
    # Members who may work the inbox (helpdesk.roles): a team may list others.
    members = list(
        routing.team.members.filter(Q(groups__name__in=ROLE_GROUPS) | Q(is_superuser=True), is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
        .distinct()
    )
    if not members:
        return None
    available = list(
        AgentPresence.objects.select_for_update()
        .filter(available_q(now=now), user_id__in=members)
        .order_by("pk")
        .values_list("user_id", flat=True)
    )
    loads = agent_loads(user_ids=available)
    candidates = sorted(uid for uid in available if loads.get(uid, 0) < routing.capacity)
    if not candidates:
        return None
    # Round-robin order: the agents after the last one served, then from the start.
    last = routing.last_agent_id or 0
    order = [uid for uid in candidates if uid > last] + [uid for uid in candidates if uid <= last]
    if routing.mode == AssignmentMode.LEAST_LOADED:
        return min(order, key=lambda uid: (loads.get(uid, 0), order.index(uid)))
    return order[0]


def case_auto_assign(*, case_id: int, now: datetime | None = None):
    """Give an unassigned case of an auto-assigning team to an agent; returns them, or None."""
    now = now or timezone.now()
    team_id = (
        Case.objects.filter(pk=case_id, assignee__isnull=True, status__in=LOAD_STATUSES)
        .values_list("team_id", flat=True)
        .first()
    )
    if team_id is None:
        return None
    with transaction.atomic():
        routing = (
            TeamRouting.objects.select_for_update()
            .select_related("team")
            .filter(team_id=team_id, auto_assign=True)
            .first()
        )
        if routing is None:
            return None
        # Under the team lock: another worker may have assigned it meanwhile.
        case = Case.objects.filter(
            pk=case_id, team_id=team_id, assignee__isnull=True, status__in=LOAD_STATUSES
        ).first()
        if case is None:
            return None
        agent_id = _choose(routing=routing, now=now)
        if agent_id is None:
            return None
        agent = get_user_model().objects.get(pk=agent_id)
        try:
            assign_case(case=case, assignee=agent)
        except ValidationError:
            logger.warning("automation: %s cannot take case %s", agent, case_id)
            return None
        routing.last_agent_id = agent_id
        routing.save(update_fields=["last_agent"])
    return agent


def _next_waiting(team_id: int) -> int | None:
    return (
        Case.objects.filter(team_id=team_id, assignee__isnull=True, status__in=LOAD_STATUSES)
        .order_by(F("waiting_since").asc(nulls_last=True), "opened_at", "pk")
        .values_list("pk", flat=True)
        .first()
    )


def teams_drain(*, team_ids: list[int] | None = None, limit: int = 500) -> int:
    """Capacity freed (a case resolved or moved, an agent online): the longest-waiting
    unassigned cases of the team are assigned now, until nobody can take more."""
    routings = TeamRouting.objects.filter(auto_assign=True)
    if team_ids is not None:
        if not team_ids:
            return 0
        routings = routings.filter(team_id__in=team_ids)
    assigned = 0
    for team_id in routings.values_list("team_id", flat=True):
        for _attempt in range(limit):
            case_id = _next_waiting(team_id)
            if case_id is None or case_auto_assign(case_id=case_id) is None:
                break
            assigned += 1
    return assigned


def stale_cases_reassign(*, now: datetime | None = None) -> int:
    """Per team with "reassign after N minutes": an agent unavailable that long gives back
    their cases still waiting for an answer; the team's queue then hands them out again."""
    now = now or timezone.now()
    moved = 0
    for routing in TeamRouting.objects.filter(reassign_after_minutes__isnull=False).select_related("team"):
        cutoff = now - timedelta(minutes=routing.reassign_after_minutes)
        gone = AgentPresence.objects.filter(
            unavailable_since__lte=cutoff, user__teams=routing.team
        ).values_list("user_id", flat=True)
        cases = Case.objects.filter(
            team_id=routing.team_id,
            assignee_id__in=list(gone),
            status=CaseStatus.OPEN,
            waiting_since__isnull=False,
        ).select_related("thread", "assignee")
        for case in cases:
            who = case.assignee.get_full_name() or case.assignee.get_username()
            with transaction.atomic():
                assign_case(case=case, assignee=None)
                system_event_add(
                    thread=case.thread,
                    case=case,
                    text=_("Returned to the team's queue: %(agent)s has been offline for %(minutes)s minutes")
                    % {"agent": who, "minutes": routing.reassign_after_minutes},
                )
            moved += 1
    return moved
