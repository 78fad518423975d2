"""POST /api/v1/outreach/ and GET /api/v1/outreach/<id>/: auth, visibility, errors, schema."""

from django.test import Client

from outreach.models import Outreach
from tests.api.conftest import client_for
from tests.factories import CaseFactory, TeamFactory, UserFactory


def _payload(world, **extra):
    return {
        "customer": world["customer"].pk,
        "body": "Your order #771 shipped today.",
        "chain": [
            {"channel": world["sms"].pk, "advance_on": "undelivered", "wait_minutes": 30},
            {"channel": world["email"].pk, "advance_on": "failed"},
        ],
        **extra,
    }


def test_an_agent_starts_an_outreach_through_the_api(world, django_assert_max_num_queries):
    api = client_for(UserFactory(username="ana"))
    response = api.post("/api/v1/outreach/", _payload(world))
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "running" and data["source"] == "api"
    assert [s["state"] for s in data["steps"]] == ["pending", "pending"]
    with django_assert_max_num_queries(8):
        detail = api.get(f"/api/v1/outreach/{data['id']}/")
    assert detail.status_code == 200 and detail.json()["id"] == data["id"]


def test_bad_input_is_a_400_in_the_api_error_shape_and_starts_nothing(world):
    api = client_for(UserFactory(username="ana"))
    response = api.post(
        "/api/v1/outreach/", _payload(world, chain=[{"channel": world["sms"].pk, "advance_on": "x"}])
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid" and "chain" in response.json()["error"]["fields"]
    response = api.post("/api/v1/outreach/", _payload(world, body="ç" * 400))
    assert response.status_code == 400 and "SMS" in response.json()["error"]["message"]
    assert not Outreach.objects.exists()


def test_a_customer_the_agent_may_not_see_is_a_404(world):
    sales, billing = TeamFactory(name="Sales"), TeamFactory(name="Billing")
    CaseFactory(thread=world["customer"].thread, team=sales)
    outsider = UserFactory(username="bo")
    billing.members.add(outsider)
    response = client_for(outsider).post("/api/v1/outreach/", _payload(world))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert not Outreach.objects.exists()


def test_no_credentials_is_a_401(world):
    response = Client().post("/api/v1/outreach/", _payload(world), content_type="application/json")
    assert response.status_code == 401


def test_the_endpoints_are_in_the_openapi_schema(db):
    schema = Client().get("/api/v1/schema/?format=json").json()
    assert "post" in schema["paths"]["/api/v1/outreach/"]
    assert "get" in schema["paths"]["/api/v1/outreach/{id}/"]


def test_options_other_than_a_whatsapp_template_are_refused(world):
    api = client_for(UserFactory(username="ana"))
    response = api.post("/api/v1/outreach/", _payload(world, options={"sms": {"x": 1}}))
    assert response.status_code == 400 and "options" in response.json()["error"]["fields"]
    # A NUL character PostgreSQL cannot store: refused (by the JSON parser or the options check).
    response = api.post("/api/v1/outreach/", _payload(world, options={"whatsapp": {"template": "a\u0000b"}}))
    assert response.status_code == 400 and response.json()["error"]["code"]
    assert not Outreach.objects.exists()
