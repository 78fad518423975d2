"""Checks a rule or macro before it is saved, with errors that say what to write instead."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from automation.rules.vocabulary import ACTION_TYPES, CONDITION_FIELDS, MACRO_ACTION_TYPES, NO_VALUE_OPS


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _ids_exist(model, ids, what: str, where: str) -> None:
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ValidationError(
            _("%(where)s: %(what)s must be given by id (a number).") % {"where": where, "what": what}
        )
    found = set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        known = ", ".join(f"{o.pk} {o}" for o in model.objects.order_by("pk")[:20])
        raise ValidationError(
            _("%(where)s: there is no %(what)s with id %(ids)s. Known: %(known)s.")
            % {"where": where, "what": what, "ids": ", ".join(map(str, missing)), "known": known or "-"}
        )


def _labels_exist(names, where: str) -> None:
    from conversations.models import Label

    found = set(Label.objects.filter(name__in=names).values_list("name", flat=True))
    missing = [n for n in names if n not in found]
    if missing:
        known = ", ".join(Label.objects.order_by("name").values_list("name", flat=True)[:30])
        raise ValidationError(
            _("%(where)s: no label named %(names)s (create it first). Labels: %(known)s.")
            % {"where": where, "names": ", ".join(missing), "known": known or "-"}
        )


def condition_validate(condition, index: int) -> None:
    from channels_adapters.models import Channel, ChannelKind
    from conversations.models import CaseStatus, Team

    where = _("Condition %(n)s") % {"n": index}
    if not isinstance(condition, dict):
        raise ValidationError(
            _('%(where)s: write it as {"field": ..., "op": ..., "value": ...}.') % {"where": where}
        )
    field, op = condition.get("field"), condition.get("op")
    if field not in CONDITION_FIELDS:
        raise ValidationError(
            _("%(where)s: unknown field '%(field)s'. Use one of: %(fields)s.")
            % {"where": where, "field": field, "fields": ", ".join(CONDITION_FIELDS)}
        )
    if op not in CONDITION_FIELDS[field]:
        raise ValidationError(
            _("%(where)s: '%(field)s' cannot use the operator '%(op)s'. Use one of: %(ops)s.")
            % {"where": where, "field": field, "op": op, "ops": ", ".join(CONDITION_FIELDS[field])}
        )
    if op in NO_VALUE_OPS:
        value = None
    elif "value" not in condition:
        raise ValidationError(_("%(where)s: a value is missing.") % {"where": where})
    else:
        value = condition["value"]
    if field == "customer_attribute" and not condition.get("key"):
        raise ValidationError(_('%(where)s: say which attribute with "key" (e.g. "vip").') % {"where": where})
    if value is None:
        return
    values = _as_list(value)
    if field == "channel":
        _ids_exist(Channel, values, _("channel"), where)
    elif field in ("team", "assignee"):
        _ids_exist(Team if field == "team" else get_user_model(), values, field, where)
    elif field == "channel_kind":
        bad = [v for v in values if v not in ChannelKind.values]
        if bad:
            raise ValidationError(
                _("%(where)s: unknown channel kind %(bad)s. Kinds: %(kinds)s.")
                % {"where": where, "bad": ", ".join(map(str, bad)), "kinds": ", ".join(ChannelKind.values)}
            )
    elif field == "status":
        bad = [v for v in values if v not in CaseStatus.values]
        if bad:
            raise ValidationError(
                _("%(where)s: unknown status %(bad)s. Statuses: %(all)s.")
                % {"where": where, "bad": ", ".join(map(str, bad)), "all": ", ".join(CaseStatus.values)}
            )
    elif field in ("priority", "survey_score"):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValidationError(_("%(where)s: the value must be a whole number.") % {"where": where})
    elif field in ("business_hours", "case_new", "case_reopened"):
        if not isinstance(value, bool):
            raise ValidationError(_("%(where)s: the value must be true or false.") % {"where": where})
    elif field == "label":
        _labels_exist(values, where)
    elif field == "text":
        if not all(isinstance(v, str) and v for v in values):
            raise ValidationError(_("%(where)s: the value must be text.") % {"where": where})
        if op == "matches":
            for pattern in values:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValidationError(
                        _("%(where)s: '%(pattern)s' is not a valid regular expression (%(error)s).")
                        % {"where": where, "pattern": pattern, "error": exc}
                    ) from exc


def action_validate(action, index: int, *, allowed=tuple(ACTION_TYPES)) -> None:
    from conversations.models import CannedResponse, CaseStatus, Priority, Team

    where = _("Action %(n)s") % {"n": index}
    kind = action.get("type") if isinstance(action, dict) else None
    if kind not in allowed:
        raise ValidationError(
            _("%(where)s: unknown type '%(type)s'. Use one of: %(types)s.")
            % {"where": where, "type": kind, "types": ", ".join(allowed)}
        )
    for key in ACTION_TYPES[kind]:
        if action.get(key) in (None, ""):
            raise ValidationError(
                _("%(where)s: '%(type)s' needs \"%(key)s\".") % {"where": where, "type": kind, "key": key}
            )
    if kind == "assign_team":
        _ids_exist(Team, [action["team"]], _("team"), where)
    elif kind == "assign_agent":
        _ids_exist(get_user_model(), [action["agent"]], _("agent"), where)
    elif kind in ("add_label", "remove_label"):
        _labels_exist([action["label"]], where)
    elif kind == "set_priority" and action["priority"] not in Priority.values:
        raise ValidationError(_("%(where)s: priority is 0 (low) to 3 (urgent).") % {"where": where})
    elif kind == "reply" and not CannedResponse.objects.filter(shortcut=action["canned"]).exists():
        raise ValidationError(
            _("%(where)s: no canned response with the shortcut '%(s)s'.")
            % {"where": where, "s": action["canned"]}
        )
    elif kind == "snooze" and not (isinstance(action["minutes"], int) and action["minutes"] > 0):
        raise ValidationError(_("%(where)s: minutes must be a whole number above 0.") % {"where": where})
    elif (
        kind == "set_status"
        and action["status"] not in CaseStatus.values
        or (kind == "set_status" and action["status"] == CaseStatus.SNOOZED)
    ):
        raise ValidationError(
            _("%(where)s: status is open, pending or resolved (use 'snooze' to snooze).") % {"where": where}
        )
    elif kind == "send_survey" and action["kind"] not in ("csat", "nps", "ces"):
        raise ValidationError(_("%(where)s: kind is csat, nps or ces.") % {"where": where})


def actions_validate(actions, *, allowed=tuple(ACTION_TYPES)) -> None:
    if not isinstance(actions, list) or not actions:
        raise ValidationError({"actions": _("Give at least one action, as a JSON list.")})
    errors = []
    for n, action in enumerate(actions, 1):
        try:
            action_validate(action, n, allowed=allowed)
        except ValidationError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ValidationError({"actions": errors})


def rule_validate(*, rule) -> None:
    from automation.models import RuleEvent

    errors = {}
    if not isinstance(rule.conditions, list):
        errors["conditions"] = [_("Write the conditions as a JSON list (an empty list matches every case).")]
    else:
        messages = []
        for n, condition in enumerate(rule.conditions, 1):
            try:
                condition_validate(condition, n)
            except ValidationError as exc:
                messages.extend(exc.messages)
        if messages:
            errors["conditions"] = messages
    try:
        actions_validate(rule.actions)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if rule.event == RuleEvent.CASE_IDLE and not rule.idle_minutes:
        errors["idle_minutes"] = [_("'Case idle' needs the number of idle minutes.")]
    if errors:
        raise ValidationError(errors)


def macro_validate(*, macro) -> None:
    actions_validate(macro.actions, allowed=MACRO_ACTION_TYPES)
