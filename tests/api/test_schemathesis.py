"""Schemathesis against the live app (WSGI, in-process) for every operation of the schema.

A supervisor's token on factory data; path ids point at real objects so the
operations run past their 404. Checks: no 5xx, every status code and content
type documented, bodies and headers as the schema says. Any finding fails.
HELPDESK_API_FUZZ_EXAMPLES sets the examples per operation (default 8).
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.services import api_token_create
from tests.factories import (
    CaseFactory,
    ChannelFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
)

EXAMPLES = int(os.environ.get("HELPDESK_API_FUZZ_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture
def fuzz_world(db, settings):
    settings.HELPDESK_API = {**settings.HELPDESK_API, "RATE_PER_TOKEN": None, "RATE_PER_IP": None}
    team = TeamFactory(name="Fuzz team")
    boss = UserFactory(username="fuzz-admin", role="admins")
    customer = CustomerFactory(name="Fuzz Customer", attributes={"plan": "gold"})
    identity = IdentityFactory(customer=customer, kind="email", address="fuzz@example.com")
    IdentityFactory(customer=customer, kind="phone", address="+14155550142")
    channel = ChannelFactory(name="Fuzz API")
    case = CaseFactory(thread=customer.thread, team=team, origin_channel=channel)
    MessageFactory(case=case, channel=channel, body="Hello")
    failed = MessageFactory(case=case, channel=channel, direction="out", author="agent", status="failed")
    CustomerFactory(name="Other customer")
    return {
        "token": api_token_create(user=boss, name="fuzz").secret,
        "identity_id": identity.pk,
        "by_prefix": {
            "/api/v1/customers/": customer.pk,
            "/api/v1/cases/": case.pk,
            "/api/v1/messages/": failed.pk,
            "/api/v1/teams/": team.pk,
            "/api/v1/agents/": boss.pk,
            "/api/v1/channels/": channel.pk,
        },
    }


@pytest.fixture
def api_schema(fuzz_world):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from helpdesk.wsgi import application

    # As Django's test client does: a request must not close the test's connection
    # (and with it the transaction holding the factory data).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_operation_conforms(case, fuzz_world):
    # A generated whole-number id becomes a real object's, so the operation runs past its
    # 404; anything else generated for the path ("null,null") is sent as it is.
    params = case.path_parameters or {}
    for prefix, pk in fuzz_world["by_prefix"].items():
        if case.operation.path.startswith(prefix) and isinstance(params.get("id"), int):
            params["id"] = pk
    if isinstance(params.get("identity_id"), int):
        params["identity_id"] = fuzz_world["identity_id"]
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_world['token']}"}, checks=CHECKS)
