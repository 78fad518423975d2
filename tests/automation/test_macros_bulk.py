"""Macros and bulk actions through their views: visibility on every case id, one action per case."""

import pytest
from django.urls import reverse

from automation.models import AgentPresence, Macro
from conversations.models import CannedResponse, Case, CaseStatus, Label, MessageKind
from tests.factories import CaseFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(org):
    Label.objects.create(name="refund")
    CannedResponse.objects.create(shortcut="bye", title="Bye", body="Thanks {{customer.first_name}}, bye!")
    macro = Macro.objects.create(
        name="Refund done",
        actions=[
            {"type": "reply", "canned": "bye"},
            {"type": "add_label", "label": "refund"},
            {"type": "resolve"},
        ],
    )
    return {**org, "macro": macro}


def _case(team=None, **kwargs):
    case = CaseFactory(team=team, **kwargs)
    MessageFactory(case=case, identity=None)
    return case


def test_macro_reply_label_resolve_in_one_click(setup, client):
    case = _case(setup["billing"], assignee=setup["ana"])
    from customers.models import Identity

    Identity.objects.create(customer=case.thread.customer, kind="email", address="m@example.com")
    client.force_login(setup["ana"])
    response = client.post(reverse("automation:case_macro", args=[case.pk]), {"macro": setup["macro"].pk})
    assert response.status_code == 200, response.content
    assert response.json()["done"] == [
        "sent the canned reply /bye",
        "label refund added",
        "status set to Resolved",
    ]
    case.refresh_from_db()
    assert case.status == CaseStatus.RESOLVED and case.labels.filter(name="refund").exists()
    reply = case.messages.get(direction="out", kind=MessageKind.TEXT)
    assert reply.author == "agent" and reply.author_user == setup["ana"]  # the agent's own reply
    assert (
        case.messages.filter(kind=MessageKind.SYSTEM, body__startswith="Macro 'Refund done' by").count() == 3
    )


def test_personal_macro_is_only_its_owners(setup, client):
    mine = Macro.objects.create(
        name="Mine", owner=setup["bo"], actions=[{"type": "set_priority", "priority": 3}]
    )
    case = _case()
    client.force_login(setup["ana"])
    assert (
        client.post(reverse("automation:case_macro", args=[case.pk]), {"macro": mine.pk}).status_code == 404
    )
    client.force_login(setup["bo"])
    assert (
        client.post(reverse("automation:case_macro", args=[case.pk]), {"macro": mine.pk}).status_code == 200
    )
    assert Case.objects.get(pk=case.pk).priority == 3


def test_macro_on_a_case_the_agent_cannot_see(setup, client):
    hidden = _case(setup["sales"])
    client.force_login(setup["ana"])
    response = client.post(reverse("automation:case_macro", args=[hidden.pk]), {"macro": setup["macro"].pk})
    assert response.status_code == 404
    assert Case.objects.get(pk=hidden.pk).status == CaseStatus.OPEN


def test_bulk_assign_label_status(setup, client, django_assert_max_num_queries):
    cases = [_case(setup["billing"]) for _ in range(3)]
    client.force_login(setup["ana"])
    url = reverse("automation:bulk")
    ids = [c.pk for c in cases]
    response = client.post(url, {"case": ids, "action": "assign_agent", "value": setup["ana"].pk})
    assert response.json() == {"ok": True, "count": 3}
    assert set(Case.objects.filter(pk__in=ids).values_list("assignee_id", flat=True)) == {setup["ana"].pk}
    client.post(url, {"case": ids, "action": "add_label", "value": "refund"})
    assert Case.labels.through.objects.filter(case_id__in=ids).count() == 3
    client.post(url, {"case": ids[:2], "action": "set_status", "value": "resolved"})
    assert list(Case.objects.filter(pk__in=ids).order_by("pk").values_list("status", flat=True)) == [
        "resolved",
        "resolved",
        "open",
    ]
    response = client.post(url, {"case": ids, "action": "macro", "value": setup["macro"].pk})
    assert response.status_code == 200


def test_bulk_refuses_cases_the_agent_cannot_see_and_changes_nothing(setup, client):
    mine = _case(setup["billing"])
    theirs = _case(setup["sales"])
    client.force_login(setup["ana"])
    response = client.post(
        reverse("automation:bulk"),
        {"case": [mine.pk, theirs.pk], "action": "set_status", "value": "resolved"},
    )
    assert response.status_code == 403
    assert "You cannot see 1 of the selected cases; nothing was changed." in response.json()["error"]
    assert not Case.objects.filter(status=CaseStatus.RESOLVED).exists()


def test_bulk_bad_input_is_explained(setup, client):
    case = _case(setup["billing"])
    client.force_login(setup["ana"])
    url = reverse("automation:bulk")
    assert client.post(url, {"case": [], "action": "set_status", "value": "open"}).json()["error"] == (
        "Select at least one case."
    )
    response = client.post(url, {"case": [case.pk], "action": "add_label", "value": "no-such-label"})
    assert response.status_code == 400 and "no label named no-such-label" in response.json()["error"]
    response = client.post(url, {"case": [case.pk], "action": "explode", "value": "x"})
    assert response.json()["error"] == "Choose what to do with the selected cases."


def test_away_toggle_and_heartbeat(setup, client):
    client.force_login(setup["ana"])
    assert client.post(reverse("automation:presence_away"), {"away": "1"}).json()["away"] is True
    assert AgentPresence.objects.get(user=setup["ana"]).away
    client.post(reverse("automation:presence_away"), {"away": "0"})
    client.post(reverse("automation:presence_heartbeat"))
    presence = AgentPresence.objects.get(user=setup["ana"])
    assert not presence.away and presence.connections == 1 and presence.last_seen_at is not None


def test_customers_cannot_use_the_endpoints(client, db):
    outsider = UserFactory(username="outsider", role="customers")
    client.force_login(outsider)
    assert client.post(reverse("automation:bulk"), {"case": [1], "action": "set_status"}).status_code == 403


def test_inbox_pages_load_the_parts(setup, client, django_assert_max_num_queries):
    case = _case(setup["billing"])
    client.force_login(setup["ana"])
    body = client.get(reverse("inbox:list")).content.decode()
    assert "data-automation-tools" in body and "automation/automation.js" in body
    with django_assert_max_num_queries(10):
        body = client.get(reverse("automation:tools")).content.decode()
    assert "data-bulk" in body and "Refund done" in body and "Away (no new cases)" in body
    with django_assert_max_num_queries(10):
        body = client.get(reverse("automation:tools"), {"case": case.pk}).content.decode()
    assert f'data-macro="{setup["macro"].pk}"' in body and "data-bulk" not in body
    hidden = _case(setup["sales"])
    assert client.get(reverse("automation:tools"), {"case": hidden.pk}).status_code == 404
