"""What a rule's conditions and actions may say (docs/automation.md lists them for admins)."""

from django.utils.translation import gettext_lazy as _

# field -> allowed operators. Values: see validation.py.
CONDITION_FIELDS = {
    "channel": ("is", "is_not"),
    "channel_kind": ("is", "is_not"),
    "text": ("contains", "not_contains", "matches"),
    "language": ("is", "is_not"),
    "priority": ("is", "is_not", "gte", "lte"),
    "label": ("has", "has_not"),
    "team": ("is", "is_not", "is_empty", "is_set"),
    "assignee": ("is", "is_not", "is_empty", "is_set"),
    "status": ("is", "is_not"),
    "customer_attribute": ("is", "is_not", "contains", "exists", "not_exists"),
    "business_hours": ("is",),
    "case_new": ("is",),
    "case_reopened": ("is",),
    "survey_score": ("is", "lte", "gte"),
    "survey_kind": ("is",),
}
NO_VALUE_OPS = ("is_empty", "is_set", "exists", "not_exists")

# action type -> its keys (all required).
ACTION_TYPES = {
    "assign_team": ("team",),
    "assign_agent": ("agent",),
    "auto_assign": (),
    "add_label": ("label",),
    "remove_label": ("label",),
    "set_priority": ("priority",),
    "reply": ("canned",),
    "note": ("text",),
    "snooze": ("minutes",),
    "resolve": (),
    "set_status": ("status",),
    "escalate": (),
    "send_survey": ("kind",),
    "call_webhook": (),  # optional "tag", echoed in the payload
}
# A macro is applied by an agent to the case in front of them: no routing or supervisor work.
MACRO_ACTION_TYPES = tuple(
    t for t in ACTION_TYPES if t not in ("auto_assign", "escalate", "send_survey", "call_webhook")
)

HELP_CONDITIONS = _(
    'A JSON list; each condition is {"field": ..., "op": ..., "value": ...}. Fields: channel (ids), '
    "channel_kind, text (contains / not_contains / matches a regular expression), language, "
    "priority (0 low - 3 urgent; is, gte, lte), label (has / has_not a label name), team and "
    'assignee (ids; is_empty, is_set), status, customer_attribute (with "key"; is, contains, exists), '
    "business_hours (true / false), case_new, case_reopened, survey_score (is, lte, gte), survey_kind. "
    "A list value means any of them."
)
HELP_ACTIONS = _(
    'A JSON list run in order; each action is {"type": ...} with its keys: assign_team {team: id}, '
    "assign_agent {agent: id}, auto_assign, add_label / remove_label {label: name}, "
    "set_priority {priority: 0-3}, reply {canned: shortcut}, note {text}, snooze {minutes}, resolve, "
    "set_status {status}, escalate, send_survey {kind: csat|nps|ces}, "
    "call_webhook {tag (optional)}: the webhooks subscribed to automation.rule_webhook."
)
