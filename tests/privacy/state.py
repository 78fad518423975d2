"""Every row of the tables a merge touches, to compare states exactly."""

from django.apps import apps

# Case.updated_at is auto_now: any save moves it, and it is nobody's data.
IGNORED = {"conversations.Case": {"updated_at"}}
MODELS = (
    "customers.Customer",
    "customers.Identity",
    "customers.CustomerMerge",
    "conversations.Thread",
    "conversations.Case",
    "conversations.Message",
    "conversations.Mention",
    "conversations.CaseRead",
    "kpis.SurveyRequest",
    "kpis.SurveyAnswer",
    "kpis.CaseSla",
)


def db_state(*, exclude_merges=True) -> dict:
    state = {}
    for label in MODELS:
        if exclude_merges and label == "customers.CustomerMerge":
            continue
        model = apps.get_model(label)
        rows = []
        for row in model.objects.order_by("pk").values():
            rows.append({k: v for k, v in row.items() if k not in IGNORED.get(label, ())})
        state[label] = rows
    Case = apps.get_model("conversations.Case")
    state["case_labels"] = sorted(Case.labels.through.objects.values_list("case_id", "label_id"))
    return state
