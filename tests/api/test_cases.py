"""Cases through the API: the inbox's filters, and changes through the inbox's services."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Label, Message
from tests.api.conftest import error_of
from tests.factories import CaseFactory, ChannelFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/cases/"


def ids(response):
    assert response.status_code == 200, response.content
    return [c["id"] for c in response.json()["results"]]


def test_filters_of_the_inbox(api, world, org):
    boss = api["boss"]
    billing, sales = world["billing_case"], world["sales_case"]
    urgent = Label.objects.create(name="urgent")
    billing.labels.add(urgent)
    billing.assignee = org["ana"]
    billing.priority = 3
    billing.save()
    email = ChannelFactory(kind="email", name="Mail", credentials={"address": "help@example.com"})
    mail_case = CaseFactory(thread=CustomerFactory().thread, origin_channel=email, status="pending")
    assert ids(boss.get(URL)) == [mail_case.pk, sales.pk, billing.pk]
    assert ids(boss.get(URL, {"status": "pending"})) == [mail_case.pk]
    assert ids(boss.get(URL, {"channel": email.pk})) == [mail_case.pk]
    assert ids(boss.get(URL, {"team": org["sales"].pk})) == [sales.pk]
    assert ids(boss.get(URL, {"assignee": org["ana"].pk})) == [billing.pk]
    assert ids(boss.get(URL, {"label": urgent.pk})) == [billing.pk]
    assert ids(boss.get(URL, {"priority": 3})) == [billing.pk]
    assert ids(boss.get(URL, {"customer": world["sol"].pk})) == [sales.pk]
    since = (timezone.now() + timedelta(hours=1)).isoformat()
    assert ids(boss.get(URL, {"updated_since": since})) == []


@pytest.mark.parametrize(
    "params", [{"status": "lost"}, {"priority": "9"}, {"team": "abc"}, {"updated_since": "yesterday"}]
)
def test_bad_filter_is_400(api, world, params):
    response = api["boss"].get(URL, params)
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == set(params)


def test_retrieve(api, world):
    body = api["ana"].get(f"{URL}{world['billing_case'].pk}/").json()
    assert body["customer"] == {"id": world["sam"].pk, "name": "Sam Billing"}
    assert body["status"] == "open" and body["origin_channel"]["kind"] == "api"
    assert "credentials" not in body["origin_channel"]


def _events(case):
    return list(Message.objects.filter(case=case, kind="system").values_list("body", flat=True))


def test_patch_goes_through_the_services_with_timeline_events(api, world, org):
    case = world["billing_case"]
    label = Label.objects.create(name="refund")
    response = api["ana"].patch(
        f"{URL}{case.pk}/",
        {"assignee": org["ana"].pk, "priority": 2, "labels": [label.pk], "status": "pending"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["assignee"], body["priority"], body["status"]) == (org["ana"].pk, 2, "pending")
    assert [lab["name"] for lab in body["labels"]] == ["refund"]
    events = " | ".join(_events(case))
    assert "assigned to" in events and "Priority set to High" in events
    assert "Labels +refund" in events and "Case pending" in events


def test_resolve_and_snooze(api, world):
    url = f"{URL}{world['billing_case'].pk}/"
    until = (timezone.now() + timedelta(days=1)).isoformat()
    snoozed = api["ana"].patch(url, {"status": "snoozed", "snoozed_until": until}).json()
    assert snoozed["status"] == "snoozed" and snoozed["snoozed_until"]
    resolved = api["ana"].patch(url, {"status": "resolved"}).json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"]


@pytest.mark.parametrize(
    "body, words",
    [
        ({"status": "snoozed"}, "until when"),
        ({"status": "snoozed", "snoozed_until": "2020-01-01T00:00:00Z"}, "in the future"),
        ({"priority": 9}, "valid choice"),
        ({}, "at least one"),
        ({"labels": [999999]}, "does not exist"),
        ({"team": 999999}, "does not exist"),
    ],
)
def test_bad_patch_is_400_with_the_reason(api, world, body, words):
    response = api["ana"].patch(f"{URL}{world['billing_case'].pk}/", body)
    assert response.status_code == 400
    assert words in str(error_of(response))


def test_assigning_a_non_agent_is_the_services_400(api, world):
    outsider = UserFactory(username="outsider", role="no-such-role")
    response = api["ana"].patch(f"{URL}{world['billing_case'].pk}/", {"assignee": outsider.pk})
    assert response.status_code == 400 and "is not an agent" in error_of(response)["message"]


def test_refused_change_leaves_nothing_half_done(api, world, org):
    """Reopening while another case is in progress is refused: the assignee sent with it is not kept."""
    case = world["billing_case"]
    case.status, case.resolved_at = "resolved", timezone.now()
    case.save()
    CaseFactory(thread=world["sam"].thread, team=org["billing"])
    response = api["ana"].patch(f"{URL}{case.pk}/", {"assignee": org["ana"].pk, "status": "open"})
    assert response.status_code == 400 and "already in progress" in error_of(response)["message"]
    case.refresh_from_db()
    assert case.assignee is None and case.status == "resolved"


def test_moving_a_case_to_another_team(api, world, org):
    response = api["ana"].patch(f"{URL}{world['billing_case'].pk}/", {"team": org["sales"].pk})
    assert response.status_code == 200 and response.json()["team"] == org["sales"].pk
    # Out of ana's sight now: the next read is 404 like any other team's case.
    assert api["ana"].get(f"{URL}{world['billing_case'].pk}/").status_code == 404


def test_unassign(api, world, org):
    case = world["billing_case"]
    case.assignee = org["ana"]
    case.save()
    response = api["ana"].patch(f"{URL}{case.pk}/", {"assignee": None})
    assert response.status_code == 200 and response.json()["assignee"] is None
