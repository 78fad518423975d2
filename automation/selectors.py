"""Reads for the inbox parts: what the macro bar and the bulk bar offer."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from automation.macros import macros_for  # noqa: F401 - read by the template tags
from automation.models import AgentPresence
from conversations.models import CaseStatus, Label, Team
from helpdesk.roles import ROLE_GROUPS


def bulk_choices(*, user) -> dict:
    agents = (
        get_user_model()
        .objects.filter(is_active=True, groups__in=Group.objects.filter(name__in=ROLE_GROUPS))
        .distinct()
        .order_by("first_name", "username")
    )
    return {
        "agents": list(agents),
        "teams": list(Team.objects.order_by("name")),
        "labels": list(Label.objects.order_by("name")),
        "statuses": [(v, label) for v, label in CaseStatus.choices if v != CaseStatus.SNOOZED],
        "macros": list(macros_for(user=user)),
    }


def presence_of(*, user) -> AgentPresence | None:
    return AgentPresence.objects.filter(user_id=user.pk).first()
