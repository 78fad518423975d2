"""An agent of one team gets 404, never 403 nor the data, for another team's case, its
messages and a customer who only has cases there: through every endpoint."""

import pytest

from tests.api.conftest import error_of
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _other_team_requests(w):
    """(method, url, body) reaching Billing's case, its customer Sam and their messages."""
    case, sam = w["billing_case"].pk, w["sam"].pk
    identity = w["sam"].identities.first().pk
    return [
        ("get", f"/api/v1/cases/{case}/", None),
        ("patch", f"/api/v1/cases/{case}/", {"priority": 3}),
        ("post", f"/api/v1/cases/{case}/replies/", {"body": "hello"}),
        ("post", f"/api/v1/cases/{case}/notes/", {"body": "hello"}),
        ("get", f"/api/v1/customers/{sam}/", None),
        ("patch", f"/api/v1/customers/{sam}/", {"name": "Renamed"}),
        ("post", f"/api/v1/customers/{sam}/identities/", {"kind": "email", "address": "x@example.com"}),
        ("delete", f"/api/v1/customers/{sam}/identities/{identity}/", None),
        ("post", f"/api/v1/customers/{sam}/merge/", {"other": w["sol"].pk}),
        ("get", f"/api/v1/customers/{sam}/timeline/", None),
        ("get", f"/api/v1/messages/{w['billing_note'].pk}/", None),
        # What Sam wrote is history only for someone who may see Sam at all.
        ("get", f"/api/v1/messages/{w['sam_in'].pk}/", None),
        ("post", f"/api/v1/messages/{w['sam_in'].pk}/retry/", {}),
    ]


@pytest.mark.parametrize("index", range(13))
def test_agent_of_another_team_gets_404_everywhere(api, world, index):
    method, url, body = _other_team_requests(world)[index]
    bo = api["bo"]
    response = bo.delete(url) if method == "delete" else getattr(bo, method)(url, body)
    assert response.status_code == 404, (method, url, response.content)
    assert error_of(response)["code"] == "not_found"


def test_nothing_changed_behind_the_404s(api, world):
    for method, url, body in _other_team_requests(world):
        bo = api["bo"]
        bo.delete(url) if method == "delete" else getattr(bo, method)(url, body)
    world["billing_case"].refresh_from_db()
    world["sam"].refresh_from_db()
    assert world["billing_case"].priority == 1 and world["sam"].name == "Sam Billing"
    assert world["sam"].identities.count() == 2
    assert world["billing_case"].messages.count() == 2


def test_merging_an_invisible_customer_into_a_visible_one_is_404(api, world):
    response = api["bo"].post(f"/api/v1/customers/{world['sol'].pk}/merge/", {"other": world["sam"].pk})
    assert response.status_code == 404
    assert world["sam"].__class__.objects.filter(pk=world["sam"].pk).exists()


def test_lists_leave_out_what_the_agent_may_not_see(api, world):
    bo = api["bo"]
    cases = [c["id"] for c in bo.get("/api/v1/cases/").json()["results"]]
    assert cases == [world["sales_case"].pk]
    customers = {c["id"] for c in bo.get("/api/v1/customers/").json()["results"]}
    assert world["sam"].pk not in customers and world["sol"].pk in customers
    assert bo.get("/api/v1/customers/", {"q": "sam@example.com"}).json()["results"] == []
    assert bo.get("/api/v1/customers/", {"q": "+1 415 555 0199"}).json()["results"] == []


def test_other_teams_case_history_shows_without_its_notes(api, world, org):
    """Sam writes to Sales too: bo sees Sam's Billing conversation, never Billing's note."""
    from tests.factories import CaseFactory, MessageFactory

    world["billing_case"].status = "resolved"
    world["billing_case"].save()
    sales = CaseFactory(thread=world["sam"].thread, team=org["sales"], origin_channel=world["channel"])
    MessageFactory(case=sales, channel=world["channel"], body="And a quote")
    bodies = [
        m["body"] for m in api["bo"].get(f"/api/v1/customers/{world['sam'].pk}/timeline/").json()["results"]
    ]
    assert "Where is my refund?" in bodies and "And a quote" in bodies
    assert "Billing only" not in bodies
    note = api["bo"].get(f"/api/v1/messages/{world['billing_note'].pk}/")
    assert note.status_code == 404


def test_supervisor_sees_everything(api, world):
    boss = api["boss"]
    assert {c["id"] for c in boss.get("/api/v1/cases/").json()["results"]} == {
        world["billing_case"].pk,
        world["sales_case"].pk,
    }
    for url in (
        f"/api/v1/cases/{world['billing_case'].pk}/",
        f"/api/v1/customers/{world['sam'].pk}/",
        f"/api/v1/messages/{world['billing_note'].pk}/",
        f"/api/v1/messages/{world['sales_note'].pk}/",
    ):
        assert boss.get(url).status_code == 200, url


def test_customer_with_no_case_is_everyones(api, world):
    walk_in = CustomerFactory(name="Walk In")
    assert api["bo"].get(f"/api/v1/customers/{walk_in.pk}/").status_code == 200
    assert api["ana"].get(f"/api/v1/customers/{walk_in.pk}/").status_code == 200
