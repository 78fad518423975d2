"""Macros: a named list of actions an agent applies to a case in one click."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from automation.models import Macro
from automation.rules.actions import ActionContext, actions_apply
from conversations import visibility


def macros_for(*, user) -> QuerySet[Macro]:
    """The shared macros and the agent's own."""
    return Macro.objects.filter(Q(owner__isnull=True) | Q(owner_id=user.pk)).order_by("name", "pk")


def macro_apply(*, macro: Macro, case, user) -> list[str]:
    """Run the macro's actions on the case as the agent; each leaves its line on the thread."""
    if macro.owner_id not in (None, user.pk):
        raise PermissionDenied(_("This macro belongs to another agent."))
    if not visibility.case_visible(user=user, case=case):
        raise PermissionDenied(_("You cannot see this case."))
    who = user.get_full_name() or user.get_username()
    ctx = ActionContext(
        case=case, actor=user, source=_("Macro '%(name)s' by %(agent)s") % {"name": macro.name, "agent": who}
    )
    return actions_apply(ctx=ctx, actions=macro.actions)
