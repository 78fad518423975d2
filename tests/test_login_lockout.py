"""Login brute force: the login form and HTTP Basic lock a username out after repeated failures."""

import base64
from datetime import timedelta

import pytest
from axes.models import AccessAttempt

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # UserFactory's
KPIS = "/api/v1/kpis/"
PERIOD = {"from": "2026-03-02", "to": "2026-03-05"}


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def _login(client, username, password, ip="198.51.100.7"):
    return client.post(
        "/login/", {"username": username, "password": password, "next": "/inbox/"}, REMOTE_ADDR=ip
    )


def _basic(client, username, password, ip="198.51.100.7"):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return client.get(KPIS, PERIOD, HTTP_AUTHORIZATION=f"Basic {token}", REMOTE_ADDR=ip)


def test_a_wrong_password_says_so_before_the_limit(client):
    UserFactory(username="maria")

    response = _login(client, "maria", "wrong")

    assert response.status_code == 200
    assert "match. Please try again." in response.content.decode()
    assert "data-locked-out" not in response.content.decode()


def test_login_form_locks_out_after_the_limit_even_with_the_right_password(client):
    UserFactory(username="maria")
    for _ in range(3):
        _login(client, "maria", "wrong")

    response = _login(client, "maria", PASSWORD)

    assert response.status_code == 429
    html = response.content.decode()
    assert "data-locked-out" in html and "Too many failed login attempts" in html and "15 minutes" in html
    assert response["Retry-After"] == "900"
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_username_and_address(client):
    UserFactory(username="maria")
    for _ in range(3):
        _login(client, "maria", "wrong")

    # Someone else guessing at maria's account does not lock maria out of her own desk.
    response = _login(client, "maria", PASSWORD, ip="203.0.113.9")

    assert response.status_code == 302 and response["Location"] == "/inbox/"


def test_a_successful_login_before_the_limit_resets_the_count(client):
    UserFactory(username="maria")
    for _ in range(2):
        _login(client, "maria", "wrong")
    assert _login(client, "maria", PASSWORD).status_code == 302
    client.logout()

    for _ in range(2):
        _login(client, "maria", "wrong")

    assert _login(client, "maria", PASSWORD).status_code == 302


def test_http_basic_failures_count_and_a_locked_out_client_gets_a_clear_429(client):
    UserFactory(username="sup", role="supervisors")
    for _ in range(2):
        assert _basic(client, "sup", "wrong").status_code == 401
    # The failure that reaches the limit already answers with the lockout.
    assert _basic(client, "sup", "wrong").status_code == 429
    assert AccessAttempt.objects.get(username="sup").failures_since_start == 3

    response = _basic(client, "sup", PASSWORD)

    assert response.status_code == 429
    assert "Too many failed login attempts" in response.content.decode()
    assert "15 minutes" in response.content.decode()
    assert response["Retry-After"] == "900"


def test_basic_and_the_login_form_share_one_count(client):
    UserFactory(username="sup", role="supervisors")
    _basic(client, "sup", "wrong")
    _basic(client, "sup", "wrong")
    _login(client, "sup", "wrong")

    assert _login(client, "sup", PASSWORD).status_code == 429
    assert _basic(client, "sup", PASSWORD).status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(client, settings):
    settings.HELPDESK_TRUSTED_PROXY_COUNT = 1
    UserFactory(username="maria")
    for _ in range(3):
        client.post(
            "/login/",
            {"username": "maria", "password": "wrong"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR="spoofed, 198.51.100.7",
        )

    assert AccessAttempt.objects.get(username="maria").ip_address == "198.51.100.7"
    other_client = client.post(
        "/login/",
        {"username": "maria", "password": PASSWORD, "next": "/inbox/"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert other_client.status_code == 302
