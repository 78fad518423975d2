"""Commitments in the REST API: what each user may read, the filters, errors, query counts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from commitments import services
from commitments.models import CommitmentStatus
from tests.api.conftest import client_for, error_of
from tests.commitments.factories import CommitmentFactory
from tests.factories import CaseFactory, CustomerFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def promised(org):
    billing_case = CaseFactory(team=org["billing"])
    said = MessageFactory(case=billing_case, body="I want it by Friday")
    note = MessageFactory(case=billing_case, kind="note", direction="out", author="agent", channel=None)
    yesterday = timezone.localdate() - timedelta(days=1)
    words = CommitmentFactory(message=said, text="Delivery by Friday", due_on=yesterday)
    internal = services.commitment_create(message=note, text="Refund approved by phone", by=org["ana"])
    closed = CommitmentFactory(message=said, text="Old one", status=CommitmentStatus.WITHDRAWN)
    CaseFactory(thread=billing_case.thread, team=org["sales"], status="resolved")  # Sales' customer too
    return {"case": billing_case, "words": words, "internal": internal, "closed": closed}


def _ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_list_follows_the_visibility_rule(org, promised):
    customer_id = promised["case"].thread.customer_id
    for name, expected in (
        ("ana", {promised["words"].pk, promised["internal"].pk}),
        ("boss", {promised["words"].pk, promised["internal"].pk}),
        # Sales sees what the customer was told on Billing's case, never its notes.
        ("bo", {promised["words"].pk}),
    ):
        client = client_for(org[name])
        assert set(_ids(client.get("/api/v1/commitments/"))) == expected, name
        assert set(_ids(client.get(f"/api/v1/customers/{customer_id}/commitments/"))) == expected, name


def test_rows_say_what_when_and_whether_past_due(org, promised):
    rows = client_for(org["ana"]).get("/api/v1/commitments/", {"past_due": "true"}).json()["results"]
    assert [r["id"] for r in rows] == [promised["words"].pk]
    row = rows[0]
    assert row["text"] == "Delivery by Friday" and row["past_due"] is True and row["status"] == "open"
    assert row["customer"] == promised["case"].thread.customer_id and row["case"] == promised["case"].pk
    assert row["channel_kind"] == promised["words"].message.channel.kind
    every = _ids(client_for(org["ana"]).get("/api/v1/commitments/", {"status": "all"}))
    assert promised["closed"].pk in every


def test_a_customer_the_agent_cannot_see_shows_none_of_their_promises(org):
    case = CaseFactory(team=org["billing"])
    CommitmentFactory(message=MessageFactory(case=case))
    assert _ids(client_for(org["bo"]).get("/api/v1/commitments/")) == []
    assert len(_ids(client_for(org["ana"]).get("/api/v1/commitments/"))) == 1


def test_bad_filters_and_unseen_customers_get_the_api_error_shape(org, promised):
    client = client_for(org["ana"])
    error = error_of(client.get("/api/v1/commitments/", {"status": "maybe"}))
    assert "status" in error["fields"]
    other = CustomerFactory()
    CaseFactory(thread=other.thread, team=org["sales"])
    response = client.get(f"/api/v1/customers/{other.pk}/commitments/")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_anonymous_callers_get_401(db):
    from tests.api.conftest import ApiClient

    response = ApiClient().get("/api/v1/commitments/")
    assert response.status_code == 401 and error_of(response)


def test_a_page_costs_the_same_queries_whatever_its_size(org, django_assert_max_num_queries):
    for _n in range(30):
        CommitmentFactory(message=MessageFactory(case=CaseFactory(team=org["billing"])))
    client = client_for(org["ana"])
    client.get("/api/v1/commitments/")
    with django_assert_max_num_queries(6):
        rows = client.get("/api/v1/commitments/", {"page_size": "25"}).json()
    assert len(rows["results"]) == 25 and rows["next"]
    with django_assert_max_num_queries(6):
        assert len(client.get(rows["next"]).json()["results"]) == 5


def test_the_schema_describes_the_commitments_endpoints(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/commitments/" in schema["paths"]
    assert "/api/v1/customers/{id}/commitments/" in schema["paths"]
