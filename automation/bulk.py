"""Bulk actions from the inbox: one action on several cases, all of them visible to the agent."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from automation.macros import macro_apply, macros_for
from automation.rules.actions import ActionContext, actions_apply
from conversations.visibility import cases_visible_to

BULK_MAX = 200
BULK_ACTIONS = ("assign_agent", "assign_team", "add_label", "set_status", "macro")


def bulk_action_build(*, action: str, value: str) -> dict:
    """The bulk form's (action, value) as a rule action; unknown ones are refused clearly."""
    from automation.rules.validation import action_validate

    if action not in BULK_ACTIONS:
        raise ValidationError(_("Choose what to do with the selected cases."))
    if action == "macro":
        return {"type": "macro", "macro": value}
    key = {"assign_agent": "agent", "assign_team": "team", "add_label": "label", "set_status": "status"}[
        action
    ]
    parsed = int(value) if key in ("agent", "team") and str(value).isdigit() else value
    built = {"type": action, key: parsed}
    try:
        action_validate(built, 1)
    except ValidationError as exc:
        raise ValidationError(
            _("That choice is not available: %(why)s") % {"why": " ".join(exc.messages)}
        ) from exc
    return built


def cases_bulk_apply(*, user, case_ids: list[int], action: str, value: str) -> int:
    """Apply to every selected case, or to none: a case the agent may not see refuses the lot."""
    ids = sorted({int(i) for i in case_ids})
    if not ids:
        raise ValidationError(_("Select at least one case."))
    if len(ids) > BULK_MAX:
        raise ValidationError(_("Select at most %(max)s cases at once.") % {"max": BULK_MAX})
    built = bulk_action_build(action=action, value=value)
    cases = list(cases_visible_to(user=user).filter(pk__in=ids).select_related("thread").order_by("pk"))
    hidden = len(ids) - len(cases)
    if hidden:
        raise PermissionDenied(
            ngettext(
                "You cannot see %(n)s of the selected cases; nothing was changed.",
                "You cannot see %(n)s of the selected cases; nothing was changed.",
                hidden,
            )
            % {"n": hidden}
        )
    if built["type"] == "macro":
        macro = (
            macros_for(user=user)
            .filter(pk=int(built["macro"]) if str(built["macro"]).isdigit() else 0)
            .first()
        )
        if macro is None:
            raise ValidationError(_("That macro is not available."))
        for case in cases:
            macro_apply(macro=macro, case=case, user=user)
        return len(cases)
    who = user.get_full_name() or user.get_username()
    for case in cases:
        ctx = ActionContext(case=case, actor=user, source=_("Bulk action by %(agent)s") % {"agent": who})
        actions_apply(ctx=ctx, actions=[built])
    return len(cases)
