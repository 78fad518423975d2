"""Personal API tokens (hashed at rest, revocable, last use noted), the session with CSRF,
and the rate limits per token and per address."""

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from api.models import ApiToken
from api.services import api_token_create, api_token_revoke
from tests.api.conftest import ApiClient, error_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/cases/"


def test_only_the_hash_and_a_prefix_are_stored(org):
    created = api_token_create(user=org["ana"], name="Shop backend")
    token = ApiToken.objects.get()
    assert created.secret.startswith("hdk_") and len(created.secret) > 40
    assert token.token_hash == hashlib.sha256(created.secret.encode()).hexdigest()
    assert token.prefix == created.secret[:12]
    stored = " ".join(str(v) for v in ApiToken.objects.values().get().values())
    assert created.secret not in stored and created.secret[12:] not in stored


def test_bearer_token_authenticates_as_its_user(world, org):
    response = ApiClient(api_token_create(user=org["bo"], name="t").secret).get(URL)
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [world["sales_case"].pk]


@pytest.mark.parametrize(
    "header", ["Bearer hdk_not-a-real-token", "Bearer", "Bearer a b", "Bearer wrong-shape"]
)
def test_bad_token_is_401_with_a_challenge(db, header):
    response = Client().get(URL, headers={"Authorization": header})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "authentication_failed"


def test_no_credentials_is_401(db):
    response = Client().get(URL)
    assert response.status_code == 401 and error_of(response)["code"] == "not_authenticated"


def test_revoked_token_is_401(org):
    created = api_token_create(user=org["ana"], name="t")
    client = ApiClient(created.secret)
    assert client.get(URL).status_code == 200
    api_token_revoke(token=created.token)
    assert client.get(URL).status_code == 401


def test_token_of_a_deactivated_user_is_401(org):
    created = api_token_create(user=org["ana"], name="t")
    org["ana"].is_active = False
    org["ana"].save()
    assert ApiClient(created.secret).get(URL).status_code == 401


def test_token_of_a_user_without_a_role_is_403(db):
    nobody = UserFactory(username="nobody", role="no-such-role")
    response = ApiClient(api_token_create(user=nobody, name="t").secret).get(URL)
    assert response.status_code == 403 and error_of(response)["code"] == "permission_denied"


def test_last_used_at_is_written_at_most_once_a_minute(org, django_assert_num_queries):
    created = api_token_create(user=org["ana"], name="t")
    client = ApiClient(created.secret)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get("/api/v1/teams/")
    first = ApiToken.objects.get().last_used_at
    assert first == start
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        client.get("/api/v1/teams/")
    assert ApiToken.objects.get().last_used_at == first
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        client.get("/api/v1/teams/")
    assert ApiToken.objects.get().last_used_at == start + timedelta(seconds=61)


def test_session_needs_csrf_for_writes(world, org):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(org["ana"])
    assert browser.get(URL).status_code == 200
    url = f"/api/v1/cases/{world['billing_case'].pk}/notes/"
    refused = browser.post(url, {"body": "x"}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in error_of(refused)["message"]
    browser.get("/account/tokens/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(
        url, {"body": "x"}, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 201


# Rate limits ---------------------------------------------------------------------------


def test_token_rate_limit_is_429_with_retry_after(settings, org):
    settings.HELPDESK_API = {**settings.HELPDESK_API, "RATE_PER_TOKEN": "3/minute"}
    client = ApiClient(api_token_create(user=org["ana"], name="t").secret)
    assert [client.get("/api/v1/teams/").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/v1/teams/")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60
    assert error_of(refused)["code"] == "throttled"
    # Another token of the same user has its own budget.
    assert (
        ApiClient(api_token_create(user=org["ana"], name="u").secret).get("/api/v1/teams/").status_code == 200
    )


def test_ip_rate_limit_counts_failed_tokens_too(settings, db):
    settings.HELPDESK_API = {**settings.HELPDESK_API, "RATE_PER_IP": "2/minute"}
    guesser = Client(REMOTE_ADDR="203.0.113.9")
    codes = [
        guesser.get(URL, headers={"Authorization": f"Bearer hdk_guess{n}"}).status_code for n in range(3)
    ]
    assert codes == [401, 401, 429]
    # Another address is not affected.
    assert Client(REMOTE_ADDR="203.0.113.10").get(URL).status_code == 401


# The tokens page and admin --------------------------------------------------------------


def test_tokens_page_shows_the_secret_once_and_revokes(client, org):
    client.force_login(org["ana"])
    page = client.get("/account/tokens/")
    assert page.status_code == 200 and "API tokens" in page.content.decode()
    created = client.post("/account/tokens/", {"name": "Shop backend"})
    html = created.content.decode()
    token = ApiToken.objects.get()
    secret = html.split('<code id="new-token">')[1].split("</code>")[0]
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert created["Cache-Control"] == "no-store"
    assert secret not in client.get("/account/tokens/").content.decode()
    assert ApiClient(secret).get(URL).status_code == 200
    response = client.post(f"/account/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    assert ApiClient(secret).get(URL).status_code == 401


def test_tokens_page_needs_a_name_and_is_per_user(client, org):
    client.force_login(org["ana"])
    assert client.post("/account/tokens/", {"name": ""}).status_code == 400
    others = api_token_create(user=org["bo"], name="bo's")
    assert client.post(f"/account/tokens/{others.token.pk}/revoke/").status_code == 404
    others.token.refresh_from_db()
    assert others.token.revoked_at is None
    assert "bo&#x27;s" not in client.get("/account/tokens/").content.decode()


def test_admin_creates_a_token_and_shows_it_once(client, org):
    root = UserFactory(username="root", role="admins", is_staff=True, is_superuser=True)
    client.force_login(root)
    response = client.post(
        "/admin/api/apitoken/add/", {"user": org["ana"].pk, "name": "From admin"}, follow=True
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    text = response.content.decode()
    secret = text.split("shown only this once: ")[1].split("<")[0].strip()
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest() and token.user == org["ana"]
