"""Teams, agents, labels, canned responses, survey answers (read) and channels (admins only)."""

import pytest
from django.utils import timezone

from channels_adapters.models import Channel
from conversations.models import CannedResponse, Label
from tests.api.conftest import client_for, error_of
from tests.factories import UserFactory
from tests.kpis.factories import SurveyAnswerFactory

pytestmark = pytest.mark.django_db


def results(response):
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_teams_and_agents(api, org):
    teams = {t["name"]: t for t in results(api["ana"].get("/api/v1/teams/"))}
    assert teams["Billing"]["members"] == [org["ana"].pk]
    assert api["ana"].get(f"/api/v1/teams/{org['sales'].pk}/").json()["name"] == "Sales"
    assert api["ana"].get("/api/v1/teams/999999/").status_code == 404
    UserFactory(username="outsider", role="no-such-role")
    agents = {a["username"]: a for a in results(api["ana"].get("/api/v1/agents/"))}
    assert agents["boss"]["role"] == "supervisor" and agents["ana"]["teams"] == [org["billing"].pk]
    assert "password" not in agents["ana"] and "email" not in agents["ana"]
    assert "outsider" not in agents
    assert api["ana"].get(f"/api/v1/agents/{org['bo'].pk}/").json()["username"] == "bo"


def test_labels(api, org):
    Label.objects.create(name="refund", color="#ff0000")
    assert [lab["name"] for lab in results(api["ana"].get("/api/v1/labels/"))] == ["refund"]


def test_canned_responses_for_everyone_and_the_users_teams(api, org):
    CannedResponse.objects.create(shortcut="hello", title="Hi", body="Hi {{customer.first_name}}")
    CannedResponse.objects.create(shortcut="refund", title="Refund", body="…", team=org["billing"])
    CannedResponse.objects.create(shortcut="quote", title="Quote", body="…", team=org["sales"])
    shortcuts = {c["shortcut"] for c in results(api["ana"].get("/api/v1/canned-responses/"))}
    assert shortcuts == {"hello", "refund"}


def test_survey_answers_of_visible_cases(api, world):
    mine = SurveyAnswerFactory(case=world["billing_case"], score=5, answered_at=timezone.now())
    SurveyAnswerFactory(case=world["sales_case"], score=2, answered_at=timezone.now())
    assert [a["id"] for a in results(api["ana"].get("/api/v1/survey-answers/"))] == [mine.pk]
    assert len(results(api["boss"].get("/api/v1/survey-answers/"))) == 2
    assert len(results(api["boss"].get("/api/v1/survey-answers/", {"case": world["sales_case"].pk}))) == 1
    assert api["boss"].get("/api/v1/survey-answers/", {"kind": "wow"}).status_code == 400


# Channels: admins only, credentials never returned ------------------------------------------


@pytest.fixture
def admin_api(db):
    return client_for(UserFactory(username="root", role="admins"))


def test_channels_are_for_admins_only(api, admin_api, world):
    for name in ("ana", "boss"):
        response = api[name].get("/api/v1/channels/")
        assert response.status_code == 403 and error_of(response)["code"] == "permission_denied"
        assert api[name].get(f"/api/v1/channels/{world['channel'].pk}/").status_code == 403
        assert api[name].post("/api/v1/channels/", {"kind": "api", "name": "x"}).status_code == 403
    assert admin_api.get("/api/v1/channels/").status_code == 200


def test_credentials_are_write_only(admin_api):
    response = admin_api.post(
        "/api/v1/channels/",
        {
            "kind": "api",
            "name": "Shop",
            "credentials": {"secret": "s3cret-value", "callback_url": "https://shop.example/h"},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert "credentials" not in body and "s3cret-value" not in response.content.decode()
    assert body["credential_keys_set"] == ["callback_url", "secret"] and body["webhook_url"].endswith(
        f"/hooks/{body['key']}/"
    )
    channel = Channel.objects.get(pk=body["id"])
    assert channel.credentials["secret"] == "s3cret-value"
    listed = admin_api.get("/api/v1/channels/").content.decode()
    assert "s3cret-value" not in listed
    detail = admin_api.get(f"/api/v1/channels/{channel.pk}/").content.decode()
    assert "s3cret-value" not in detail


def test_active_channel_needs_its_credentials(admin_api):
    response = admin_api.post(
        "/api/v1/channels/", {"kind": "whatsapp", "name": "WA", "credentials": {"phone_number_id": "1"}}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert "credentials" in error["fields"] and "access_token" in error["fields"]["credentials"][0]
    inactive = admin_api.post("/api/v1/channels/", {"kind": "whatsapp", "name": "WA", "is_active": False})
    assert inactive.status_code == 201


def test_patch_merges_credentials_and_keeps_the_kind(admin_api, world):
    channel = world["channel"]
    response = admin_api.patch(
        f"/api/v1/channels/{channel.pk}/",
        {"name": "Shop 2", "kind": "sms", "credentials": {"secret": "new-one"}},
    )
    assert response.status_code == 200, response.content
    channel.refresh_from_db()
    assert channel.name == "Shop 2" and channel.kind == "api"
    assert channel.credentials == {"secret": "new-one", "callback_url": "http://127.0.0.1:9/unused"}
    removed = admin_api.patch(f"/api/v1/channels/{channel.pk}/", {"credentials": {"secret": None}})
    assert removed.status_code == 400  # an active API channel needs its secret
    assert admin_api.patch("/api/v1/channels/999999/", {"name": "x"}).status_code == 404


def test_bad_channel_settings_are_400(admin_api):
    response = admin_api.post(
        "/api/v1/channels/",
        {"kind": "webchat", "name": "Chat", "settings": {"allowed_origins": "shop.example/path"}},
    )
    assert response.status_code == 400 and "settings" in error_of(response)["fields"]
