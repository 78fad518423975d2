"""The API's cast: tests/conftest.py's `org` (Billing: ana, Sales: bo, supervisor boss),
a customer with a case per team, and clients holding each user's personal token."""

import json

import pytest
from django.test import Client

from api.services import api_token_create
from tests.factories import CaseFactory, ChannelFactory, CustomerFactory, IdentityFactory, MessageFactory


class ApiClient:
    """Django's test client speaking JSON with a Bearer token (or none)."""

    def __init__(self, secret: str | None = None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def _send(self, method, url, data=None, **kwargs):
        call = getattr(self.client, method)
        if method == "get":
            return call(url, data or {}, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)
        body = json.dumps(data) if data is not None and not isinstance(data, str | bytes) else data
        return call(
            url,
            body,
            content_type=kwargs.pop("content_type", "application/json"),
            headers={**self.headers, **kwargs.pop("headers", {})},
            **kwargs,
        )

    def get(self, url, data=None, **kwargs):
        return self._send("get", url, data, **kwargs)

    def post(self, url, data=None, **kwargs):
        return self._send("post", url, data, **kwargs)

    def patch(self, url, data=None, **kwargs):
        return self._send("patch", url, data, **kwargs)

    def delete(self, url, **kwargs):
        return self._send("delete", url, None, **kwargs)


def client_for(user) -> ApiClient:
    return ApiClient(api_token_create(user=user, name=f"tests {user.username}").secret)


@pytest.fixture(autouse=True)
def _generous_rates(settings):
    # Rate limits have their own tests; elsewhere a test must never meet one.
    settings.HELPDESK_API = {**settings.HELPDESK_API, "RATE_PER_TOKEN": None, "RATE_PER_IP": None}


@pytest.fixture
def api(org):
    """{"ana": ApiClient, "bo": ..., "boss": ...}: each with their own token."""
    return {name: client_for(org[name]) for name in ("ana", "bo", "boss")}


@pytest.fixture
def world(org):
    """Sam has a case with Billing (ana's team); Sol has one with Sales (bo's team)."""
    channel = ChannelFactory(name="Shop API")
    sam = CustomerFactory(name="Sam Billing")
    IdentityFactory(customer=sam, kind="email", address="sam@example.com")
    IdentityFactory(customer=sam, kind="phone", address="+14155550199")
    billing_case = CaseFactory(thread=sam.thread, team=org["billing"], origin_channel=channel)
    sam_in = MessageFactory(case=billing_case, channel=channel, body="Where is my refund?")
    billing_note = MessageFactory(
        case=billing_case, channel=None, kind="note", direction="out", author="agent", body="Billing only"
    )
    sol = CustomerFactory(name="Sol Sales")
    IdentityFactory(customer=sol, kind="email", address="sol@example.com")
    sales_case = CaseFactory(thread=sol.thread, team=org["sales"], origin_channel=channel)
    sol_in = MessageFactory(case=sales_case, channel=channel, body="A quote please")
    sales_note = MessageFactory(
        case=sales_case, channel=None, kind="note", direction="out", author="agent", body="Sales only"
    )
    sales_failed = MessageFactory(
        case=sales_case, channel=channel, direction="out", author="agent", status="failed", body="Quote"
    )
    return {
        "channel": channel,
        "sam": sam,
        "sol": sol,
        "billing_case": billing_case,
        "sales_case": sales_case,
        "sam_in": sam_in,
        "sol_in": sol_in,
        "billing_note": billing_note,
        "sales_note": sales_note,
        "sales_failed": sales_failed,
    }


def error_of(response) -> dict:
    """The error body, checked to have the one shape every API error has."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]
