"""Who may see what: the one visibility rule (DESIGN.md "Visibility", docs/visibility.md).

Every view, WebSocket push, export and API endpoint asks this module; none
keeps a second copy of the rule.

- Supervisors and admins see everything.
- An agent sees the cases of their teams, cases assigned to them, and unrouted
  cases (no team yet).
- A customer is visible to an agent who may see one of their cases, or when
  they have no case at all (nobody owns them yet).
- On a customer's thread, the messages of a case the agent may not see are
  history at most: with HELPDESK["OTHER_TEAMS_HISTORY"] = "conversation" (the
  default) the agent sees what the customer wrote and was told there (so
  nobody asks the customer to repeat themselves), never that case's internal
  notes and events; with "hidden" nothing of that case shows.
- A push about a case goes to the groups of the users who may see it: the
  case's team (or the unrouted queue), its assignee and the supervisors.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Case as When_
from django.db.models import Max, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from conversations.models import Case, Message, MessageKind
from helpdesk.roles import user_is_agent, user_is_supervisor

# Messages of another team's case that never show as history.
INTERNAL_KINDS = (MessageKind.NOTE, MessageKind.SYSTEM)


def user_sees_everything(user) -> bool:
    return user_is_supervisor(user)


def user_team_ids(*, user) -> list[int]:
    """The user's teams, read once per request (kept on the user object)."""
    cached = getattr(user, "_helpdesk_team_ids", None)
    if cached is None:
        cached = list(user.teams.values_list("pk", flat=True))
        user._helpdesk_team_ids = cached
    return cached


def _case_q(*, user, prefix: str = "") -> Q:
    team_ids = user_team_ids(user=user)
    return (
        Q(**{f"{prefix}team_id__in": team_ids})
        | Q(**{f"{prefix}team__isnull": True})
        | Q(**{f"{prefix}assignee_id": user.pk})
    )


# Cases -----------------------------------------------------------------------------


def cases_visible_to(*, user) -> QuerySet[Case]:
    if not user_is_agent(user):
        return Case.objects.none()
    if user_sees_everything(user):
        return Case.objects.all()
    return Case.objects.filter(_case_q(user=user))


def case_visible(*, user, case: Case) -> bool:
    """The same rule in Python, for a case already loaded (no query)."""
    if not user_is_agent(user):
        return False
    if user_sees_everything(user):
        return True
    return case.team_id is None or case.team_id in user_team_ids(user=user) or case.assignee_id == user.pk


# Customers -------------------------------------------------------------------------


def customers_visible_to(*, user, customers: QuerySet | None = None) -> QuerySet:
    from customers.models import Customer

    customers = Customer.objects.all() if customers is None else customers
    if not user_is_agent(user):
        return customers.none()
    if user_sees_everything(user):
        return customers
    # Per customer, 1 if one of their cases is visible, 0 if none is, NULL if they have
    # none (then visible too). One correlated aggregate rather than EXISTS(...) OR NOT
    # EXISTS(...): PostgreSQL answers that OR by hashing every case of the company
    # first (200 ms at 100,000 cases, for a page of 50), while this subquery runs per
    # row through the thread and case indexes, and a page stops after its rows.
    seen = (
        Case.objects.filter(thread__customer_id=OuterRef("pk"))
        .order_by()
        .values("thread__customer_id")
        .annotate(seen=Max(When_(When(_case_q(user=user), then=Value(1)), default=Value(0))))
        .values("seen")
    )
    # "not 0" rather than "= 1": the planner then expects most customers to pass, as they
    # do (unrouted and own-team), and plans a short index scan instead of a long one.
    return customers.alias(_seen=Coalesce(Subquery(seen), Value(1))).exclude(_seen=0)


def customer_visible(*, user, customer) -> bool:
    return customers_visible_to(user=user).filter(pk=customer.pk).exists()


# Messages --------------------------------------------------------------------------


def _history_shown() -> bool:
    return settings.HELPDESK.get("OTHER_TEAMS_HISTORY", "conversation") == "conversation"


def messages_visible_to(*, user, messages: QuerySet[Message] | None = None) -> QuerySet[Message]:
    """Filter a queryset of messages (usually one thread's) down to what the user may read."""
    messages = Message.objects.all() if messages is None else messages
    if not user_is_agent(user):
        return messages.none()
    if user_sees_everything(user):
        return messages
    # case__team__isnull also holds for messages with no case (merge events): visible.
    rule = _case_q(user=user, prefix="case__")
    if _history_shown():
        rule |= ~Q(kind__in=INTERNAL_KINDS)
    return messages.filter(rule)


def message_visible(*, user, message: Message) -> bool:
    if not user_is_agent(user):
        return False
    if user_sees_everything(user):
        return True
    case = message.case if message.case_id else None
    if case is None or case_visible(user=user, case=case):
        return True
    return _history_shown() and message.kind not in INTERNAL_KINDS


# WebSocket groups ------------------------------------------------------------------
#
# A browser joins, at connect time, the groups its user's rule allows; the client
# names none of them, so it cannot widen what it hears. A push goes to every group
# whose members may see the case; a user in two of them (an assignee who is also
# in the team) receives it twice, and the consumer drops the repeat by event id.

SUPERVISORS_GROUP = "inbox.supervisors"
UNROUTED_GROUP = "inbox.unrouted"


def team_group(team_id: int) -> str:
    return f"inbox.team.{team_id}"


def user_group(user_id: int) -> str:
    return f"inbox.user.{user_id}"


def groups_for_user(*, user) -> list[str]:
    """The groups an agent's browser joins."""
    if not user_is_agent(user):
        return []
    if user_sees_everything(user):
        return [SUPERVISORS_GROUP, user_group(user.pk)]
    return [UNROUTED_GROUP, user_group(user.pk), *(team_group(t) for t in user_team_ids(user=user))]


def groups_for_case(*, team_id: int | None, assignee_id: int | None) -> list[str]:
    """The groups a push about a case with this team and assignee reaches."""
    groups = [SUPERVISORS_GROUP, UNROUTED_GROUP if team_id is None else team_group(team_id)]
    if assignee_id is not None:
        groups.append(user_group(assignee_id))
    return groups
