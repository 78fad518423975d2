"""The "try this rule" preview changes nothing: no row, no push, no send."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from automation.models import RuleEvent
from automation.rules.engine import rule_preview
from conversations.models import Case, Label, Message
from tests.automation.factories import RuleFactory
from tests.factories import CaseFactory, ChannelFactory, MessageFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rule():
    team = TeamFactory()
    Label.objects.create(name="vip")
    channel = ChannelFactory()
    for n in range(12):
        case = CaseFactory(origin_channel=channel)
        MessageFactory(case=case, body="refund please" if n % 3 == 0 else "hello")
    return RuleFactory(
        event=RuleEvent.MESSAGE_RECEIVED,
        conditions=[
            {"field": "text", "op": "contains", "value": "refund"},
            {"field": "label", "op": "has_not", "value": "vip"},
            {"field": "business_hours", "op": "is", "value": True},
        ],
        actions=[{"type": "assign_team", "team": team.pk}, {"type": "add_label", "label": "vip"}],
    )


def _snapshot():
    return (
        list(Case.objects.order_by("pk").values_list("pk", "team_id", "assignee_id", "status", "priority")),
        Message.objects.count(),
        list(Case.labels.through.objects.values_list("case_id", "label_id")),
    )


def test_preview_matches_and_writes_nothing(rule, django_capture_on_commit_callbacks):
    before = _snapshot()
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as callbacks:
        rows = rule_preview(rule=rule)
    assert sum(r["matched"] for r in rows) == 4
    assert all(r["actions"][0].startswith("assign to team") for r in rows if r["matched"])
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert callbacks == []  # nothing queued: no push, no send
    assert _snapshot() == before
    assert len(queries) <= 8  # not one per case


def test_admin_preview_page(rule, client, django_assert_max_num_queries):
    admin = UserFactory(username="root", role="admins", is_staff=True, is_superuser=True)
    client.force_login(admin)
    before = _snapshot()
    with django_assert_max_num_queries(20):
        response = client.get(reverse("admin:automation_rule_preview", args=[rule.pk]))
    assert response.status_code == 200
    assert "The rule would act on 4 of the last 12 cases." in response.content.decode()
    assert _snapshot() == before


def test_admin_rule_form_explains_mistakes(client):
    admin = UserFactory(username="root2", role="admins", is_staff=True, is_superuser=True)
    client.force_login(admin)
    response = client.post(
        reverse("admin:automation_rule_add"),
        {
            "name": "Bad",
            "position": 1,
            "is_active": "on",
            "event": "message_received",
            "match": "all",
            "conditions": '[{"field": "langauge", "op": "is", "value": "es"}]',
            "actions": "[]",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "unknown field &#x27;langauge&#x27;" in body or "unknown field 'langauge'" in body
    assert "Give at least one action" in body
