"""One error shape with the right 4xx for bad input; the KPI endpoint keeps its own contract."""

import base64

import pytest

from tests.api.conftest import error_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_malformed_json_is_400(api, world):
    response = api["ana"].post(f"/api/v1/cases/{world['billing_case'].pk}/notes/", "{not json")
    assert response.status_code == 400 and error_of(response)["code"] == "parse_error"


def test_nul_and_lone_surrogates_are_400_not_database_errors(api, world):
    url = f"/api/v1/customers/{world['sam'].pk}/"
    for raw in ('{"name": "a\\u0000b"}', '{"attributes": {"k\\u0000": 1}}', '{"name": "\\ud800"}'):
        response = api["ana"].patch(url, raw)
        assert response.status_code == 400, raw
        error_of(response)


def test_form_encoded_body_is_415(api, world):
    response = api["ana"].post(
        f"/api/v1/cases/{world['billing_case'].pk}/notes/",
        "body=x",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415 and error_of(response)["code"] == "unsupported_media_type"


def test_wrong_method_is_405(api, world):
    response = api["ana"].delete(f"/api/v1/cases/{world['billing_case'].pk}/")
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"


def test_missing_case_is_404_in_words(api, db):
    response = api["ana"].get("/api/v1/cases/987654321/")
    error = error_of(response)
    assert response.status_code == 404 and "belongs to a team you are not in" in error["message"]


def test_huge_ids_and_page_sizes_are_4xx(api, world):
    boss = api["boss"]
    assert boss.get("/api/v1/cases/", {"team": str(2**70)}).status_code == 400
    assert boss.get("/api/v1/cases/", {"page_size": "0"}).status_code == 400
    assert boss.get("/api/v1/cases/", {"page_size": "5000"}).status_code == 400
    assert boss.post(f"/api/v1/customers/{world['sam'].pk}/merge/", {"other": 2**70}).status_code == 400
    assert boss.patch(f"/api/v1/cases/{world['billing_case'].pk}/", {"assignee": 2**70}).status_code == 400
    assert boss.get("/api/v1/cases/99999999999999999999999/").status_code == 404


def test_field_errors_name_the_field(api, world):
    response = api["ana"].post(f"/api/v1/cases/{world['billing_case'].pk}/notes/", {})
    error = error_of(response)
    assert error["code"] == "invalid" and error["fields"] == {"body": ["This field is required."]}
    assert error["message"] == "body: This field is required."


# The KPI endpoint: same answers as before the API existed --------------------------------


def test_kpi_endpoint_keeps_its_own_error_bodies(client, db):
    boss = UserFactory(username="sup", role="supervisors")
    client.force_login(boss)
    response = client.get("/api/v1/kpis/", {"from": "2026-03-05", "to": "2026-03-02"})
    assert response.status_code == 400 and set(response.json()) == {"errors"}
    client.logout()
    anonymous = client.get("/api/v1/kpis/", {"from": "2026-03-02", "to": "2026-03-05"})
    assert anonymous.status_code == 401 and set(anonymous.json()) == {"detail"}
    assert anonymous["WWW-Authenticate"].startswith("Basic")
    token = base64.b64encode(b"sup:pass-word-123").decode()
    basic = client.get(
        "/api/v1/kpis/", {"from": "2026-03-02", "to": "2026-03-05"}, HTTP_AUTHORIZATION=f"Basic {token}"
    )
    assert basic.status_code == 200 and set(basic.json()) == {
        "from",
        "to",
        "totals",
        "by_channel",
        "by_agent",
        "by_team",
        "series",
    }


def test_kpi_endpoint_is_not_in_the_api_schema(client, db):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/kpis/" not in schema["paths"] and "/api/v1/cases/" in schema["paths"]


def test_docs_are_served_from_the_package_not_a_cdn(client, db):
    page = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in page and "cdn" not in page.lower() and "/static/drf_spectacular_sidecar/" in page
    from django.contrib.staticfiles import finders

    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
