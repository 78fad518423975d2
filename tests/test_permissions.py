"""Who may reach every URL: a matrix generated from the URL conf.

Every named URL of the project (the admin aside, checked on its own) needs a rule
in RULES; a new URL without one fails `test_every_url_has_a_rule` and its matrix
rows, so nobody adds a page without deciding who may see it. Roles: anonymous, a
logged-in user with no helpdesk role, an agent of team A (the team owning the case
under test), an agent of team B, a supervisor and an admin.

Outcomes: "ok" (the view ran: 2xx, a redirect that is not to the login page, or a
400 for the dummy input), "login" (sent to the login page), "denied" (401/403),
"hidden" (404: the object is not theirs, and its existence is not confirmed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import (
    CaseFactory,
    ChannelFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "no_role", "agent_a", "agent_b", "supervisor", "admin")


def _named_urls(resolver=None, namespace="") -> list[str]:
    resolver = resolver or get_resolver()
    names = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            if entry.namespace == "admin":
                continue  # Django admin: staff only, see test_admin_is_for_staff_only
            names.extend(_named_urls(entry, inner))
        elif isinstance(entry, URLPattern):
            assert entry.name, f"URL {entry.pattern} has no name: name it and give it a rule"
            names.append(f"{namespace}{entry.name}")
    return names


@dataclass
class Rule:
    method: str = "get"
    # Keyword arguments for reverse(), from the world built by `world`.
    args: callable = None
    data: callable = None
    query: callable = None
    headers: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)


AGENTS_ONLY = {
    "anonymous": "login",
    "no_role": "denied",
    "agent_a": "ok",
    "agent_b": "ok",
    "supervisor": "ok",
    "admin": "ok",
}
CASE_OF_TEAM_A = {**AGENTS_ONLY, "agent_b": "hidden"}
SUPERVISORS_ONLY = {**AGENTS_ONLY, "agent_a": "denied", "agent_b": "denied"}
PUBLIC = dict.fromkeys(ROLES, "ok")


def case_args(w):
    return {"pk": w["case"].pk}


NOBODY_DENIED = dict.fromkeys(ROLES, "denied")
API_AGENTS = {**AGENTS_ONLY, "anonymous": "denied"}
API_CASE_OF_TEAM_A = {**API_AGENTS, "agent_b": "hidden"}
API_ADMINS_ONLY = {**dict.fromkeys(ROLES, "denied"), "admin": "ok"}


def customer_args(w):
    return {"pk": w["customer"].pk}


def webchat_args(w):
    return {"key": w["webchat"].key}


def _matrix_macro():
    from automation.models import Macro

    return Macro.objects.create(name="matrix", actions=[{"type": "set_priority", "priority": 2}])


def case_rule(method="post", data=None, query=None):
    return Rule(method=method, args=case_args, data=data, query=query, expect=CASE_OF_TEAM_A)


def commitment_args(w):
    from tests.commitments.factories import CommitmentFactory

    return {"pk": CommitmentFactory(message=w["message"]).pk}


RULES: dict[str, Rule] = {
    # Public by design: the login page, the health check, the home redirect.
    "login": Rule(expect=PUBLIC),
    "logout": Rule(method="post", expect=dict.fromkeys(ROLES, "login")),
    "home": Rule(expect=PUBLIC),
    "healthz": Rule(expect=PUBLIC),
    # The JavaScript translation catalog: public texts only, for any page's script.
    "javascript-catalog": Rule(expect=PUBLIC),
    "readyz": Rule(expect=PUBLIC),
    # Providers' webhooks: no session, the provider's signature decides (403 unsigned).
    "webhook": Rule(
        method="post", args=lambda w: {"key": w["channel"].key}, expect=dict.fromkeys(ROLES, "denied")
    ),
    # The survey page is reached by a signed token; a forged one is refused for all.
    "kpis:survey": Rule(args=lambda w: {"token": "forged-token"}, expect=dict.fromkeys(ROLES, "hidden")),
    "kpis:api": Rule(expect={**SUPERVISORS_ONLY, "anonymous": "denied"}),
    "kpis:dashboard": Rule(expect=SUPERVISORS_ONLY),
    "kpis:scorecard": Rule(expect=SUPERVISORS_ONLY),
    "kpis:scorecard_csv": Rule(expect=SUPERVISORS_ONLY),
    "kpis:api_channels": Rule(expect={**SUPERVISORS_ONLY, "anonymous": "denied"}),
    "kpis:dashboard_csv": Rule(args=lambda w: {"table": "channels"}, expect=SUPERVISORS_ONLY),
    # The inbox.
    "inbox:list": Rule(expect=AGENTS_ONLY),
    "inbox:mentions": Rule(expect=AGENTS_ONLY),
    "inbox:customer_search": Rule(query=lambda w: {"q": "sa"}, expect=AGENTS_ONLY),
    "inbox:case": case_rule("get"),
    "inbox:case_next": case_rule("get"),
    "inbox:case_read": case_rule(),
    "inbox:case_reply": case_rule(data=lambda w: {"mode": "note", "body": "matrix"}),
    "inbox:case_assign": case_rule(data=lambda w: {"team": w["team_a"].pk}),
    "inbox:case_status": case_rule(data=lambda w: {"status": "pending"}),
    "inbox:case_priority": case_rule(data=lambda w: {"priority": 2}),
    "inbox:case_labels": case_rule(data=lambda w: {}),
    "inbox:case_call_log": case_rule(data=lambda w: {"direction": "inbound", "answered": ""}),
    "inbox:case_merge": case_rule("get", query=lambda w: {"other": w["walk_in"].pk}),
    "inbox:message_retry": Rule(method="post", args=lambda w: {"pk": w["message"].pk}, expect=CASE_OF_TEAM_A),
    # A stored file of an internal note on team A's case (another team never sees notes).
    "inbox:attachment": Rule(args=lambda w: {"message_id": w["note"].pk, "index": 0}, expect=CASE_OF_TEAM_A),
    # Automation (docs/automation.md): the inbox parts; bulk refuses a case the agent cannot see.
    "automation:tools": Rule(expect=AGENTS_ONLY),
    "automation:case_macro": case_rule(data=lambda w: {"macro": _matrix_macro().pk}),
    "automation:bulk": Rule(
        method="post",
        data=lambda w: {"case": [w["case"].pk], "action": "set_status", "value": "pending"},
        expect={**AGENTS_ONLY, "agent_b": "denied"},
    ),
    "automation:presence_away": Rule(method="post", data=lambda w: {"away": "1"}, expect=AGENTS_ONLY),
    "automation:presence_heartbeat": Rule(method="post", expect=AGENTS_ONLY),
    # The website chat's visitor side: an agent's session opens nothing there. The loader
    # and the frame refuse a site not on the channel's list; the visitor API wants a
    # visitor token (tests/channels_adapters/test_webchat.py has the rest).
    "webchat:loader": Rule(
        args=webchat_args, headers={"Referer": "https://evil.example/page"}, expect=NOBODY_DENIED
    ),
    "webchat:frame": Rule(
        args=webchat_args, query=lambda w: {"origin": "https://evil.example"}, expect=NOBODY_DENIED
    ),
    # Public by design: any visitor of an allowed site starts a session (the body decides).
    "webchat:session": Rule(method="post", args=webchat_args, expect=PUBLIC),
    "webchat:messages": Rule(args=webchat_args, expect=NOBODY_DENIED),
    "webchat:prechat": Rule(method="post", args=webchat_args, expect=NOBODY_DENIED),
    "webchat:typing": Rule(method="post", args=webchat_args, expect=NOBODY_DENIED),
    "webchat:read": Rule(method="post", args=webchat_args, expect=NOBODY_DENIED),
    # REST API v1: anonymous gets 401 (a Bearer challenge), not the login page. Another
    # team's case, its messages and a customer only that team has are 404 (tests/api has the rest).
    "api:customers": Rule(expect=API_AGENTS),
    "api:customer": Rule(args=customer_args, expect=API_CASE_OF_TEAM_A),
    "api:customer_identities": Rule(method="post", args=customer_args, expect=API_CASE_OF_TEAM_A),
    "api:customer_identity": Rule(
        method="delete",
        args=lambda w: {"pk": w["customer"].pk, "identity_id": w["identity"].pk},
        expect=API_CASE_OF_TEAM_A,
    ),
    "api:customer_merge": Rule(method="post", args=customer_args, expect=API_CASE_OF_TEAM_A),
    "api:customer_timeline": Rule(args=customer_args, expect=API_CASE_OF_TEAM_A),
    "api:cases": Rule(expect=API_AGENTS),
    "api:case": Rule(args=case_args, expect=API_CASE_OF_TEAM_A),
    "api:case_replies": Rule(method="post", args=case_args, expect=API_CASE_OF_TEAM_A),
    "api:case_notes": Rule(method="post", args=case_args, expect=API_CASE_OF_TEAM_A),
    "api:message": Rule(args=lambda w: {"pk": w["note"].pk}, expect=API_CASE_OF_TEAM_A),
    "api:message_retry": Rule(
        method="post", args=lambda w: {"pk": w["message"].pk}, expect=API_CASE_OF_TEAM_A
    ),
    # The file of an internal note on team A's case: another team never sees notes.
    "api:message_attachment": Rule(
        args=lambda w: {"pk": w["note"].pk, "index": 0}, expect=API_CASE_OF_TEAM_A
    ),
    "api:canned_responses": Rule(expect=API_AGENTS),
    "api:teams": Rule(expect=API_AGENTS),
    "api:team": Rule(args=lambda w: {"pk": w["team_a"].pk}, expect=API_AGENTS),
    "api:agents": Rule(expect=API_AGENTS),
    "api:agent": Rule(args=lambda w: {"pk": w["users"]["agent_a"].pk}, expect=API_AGENTS),
    "api:labels": Rule(expect=API_AGENTS),
    "api:survey_answers": Rule(expect=API_AGENTS),
    "api:channels": Rule(expect=API_ADMINS_ONLY),
    "api:channel": Rule(args=lambda w: {"pk": w["channel"].pk}, expect=API_ADMINS_ONLY),
    # The schema and its docs describe the API and hold no data.
    "api:schema": Rule(expect=PUBLIC),
    "api:docs": Rule(expect=PUBLIC),
    "api:redoc": Rule(expect=PUBLIC),
    "api:not_found": Rule(args=lambda w: {"rest": "no/such/thing/"}, expect=dict.fromkeys(ROLES, "hidden")),
    # Personal API tokens: each user's own page; another user's token is 404.
    "account:tokens": Rule(expect=AGENTS_ONLY),
    # One's own language: anyone who can log in, role or not.
    "accounts:preferences": Rule(expect={**dict.fromkeys(ROLES, "ok"), "anonymous": "login"}),
    "account:token_revoke": Rule(
        method="post",
        args=lambda w: {"pk": w["token"].pk},
        expect={**AGENTS_ONLY, "agent_b": "hidden", "supervisor": "hidden", "admin": "hidden"},
    ),
    "webchat:attachment": Rule(
        args=lambda w: {"key": w["webchat"].key, "message_id": w["note"].pk, "index": 0},
        query=lambda w: {"t": "forged"},
        expect=dict.fromkeys(ROLES, "hidden"),
    ),
    # Customers directory, GDPR export and erasure (privacy app, docs/privacy.md).
    "api:customer_export": Rule(
        args=customer_args, expect={**API_AGENTS, "agent_a": "denied", "agent_b": "denied"}
    ),
    "privacy:customers": Rule(expect=AGENTS_ONLY),
    "privacy:customer": Rule(args=customer_args, expect=CASE_OF_TEAM_A),
    "privacy:customer_edit": Rule(
        method="post",
        args=customer_args,
        data=lambda w: {"name": "Sam", "attributes": "{}"},
        expect=CASE_OF_TEAM_A,
    ),
    "privacy:identity_add": Rule(
        method="post",
        args=customer_args,
        data=lambda w: {"kind": "email", "address": "x"},
        expect=CASE_OF_TEAM_A,
    ),
    "privacy:identity_remove": Rule(
        method="post",
        args=lambda w: {"pk": w["customer"].pk, "identity_id": w["identity"].pk},
        expect=CASE_OF_TEAM_A,
    ),
    "privacy:customer_merge": Rule(
        args=customer_args, query=lambda w: {"other": w["walk_in"].pk}, expect=CASE_OF_TEAM_A
    ),
    "privacy:customer_export": Rule(args=customer_args, expect=SUPERVISORS_ONLY),
    "privacy:customer_legal_hold": Rule(
        method="post", args=customer_args, expect={**SUPERVISORS_ONLY, "supervisor": "denied"}
    ),
    "privacy:customer_erase": Rule(
        method="post",
        args=customer_args,
        data=lambda w: {"confirm": "not yet"},
        expect={**SUPERVISORS_ONLY, "supervisor": "denied"},
    ),
    "privacy:customer_unmerge": Rule(
        method="post",
        args=lambda w: {"merge_id": 999999},
        expect={**SUPERVISORS_ONLY, "supervisor": "hidden", "admin": "hidden"},
    ),
    # Commitments (docs/commitments.md): on team A's case, and the supervisors' list.
    "commitments:board": Rule(expect=SUPERVISORS_ONLY),
    "commitments:mark": Rule(
        method="post",
        args=lambda w: {"message_id": w["message"].pk},
        data=lambda w: {"text": "matrix"},
        expect=CASE_OF_TEAM_A,
    ),
    "commitments:close": Rule(method="post", args=commitment_args, expect=CASE_OF_TEAM_A),
    "commitments:pinned": Rule(args=lambda w: {"customer_id": w["customer"].pk}, expect=CASE_OF_TEAM_A),
    "api:commitments": Rule(expect=API_AGENTS),
    "api:customer_commitments": Rule(args=customer_args, expect=API_CASE_OF_TEAM_A),
    # The public help center (knowledge app): anyone reads it; an unknown article is 404 for
    # all (tests/knowledge has the published pages). Suggestions follow the case's visibility.
    "knowledge:root": Rule(expect=PUBLIC),
    "knowledge:sitemap": Rule(expect=PUBLIC),
    "knowledge:home": Rule(args=lambda w: {"lang": "en"}, expect=PUBLIC),
    "knowledge:search": Rule(
        args=lambda w: {"lang": "es"}, query=lambda w: {"q": "reembolso"}, expect=PUBLIC
    ),
    "knowledge:category": Rule(
        args=lambda w: {"lang": "en", "slug": "none"}, expect=dict.fromkeys(ROLES, "hidden")
    ),
    "knowledge:article": Rule(
        args=lambda w: {"lang": "en", "slug": "none"}, expect=dict.fromkeys(ROLES, "hidden")
    ),
    "knowledge:vote": Rule(
        method="post", args=lambda w: {"lang": "en", "slug": "none"}, expect=dict.fromkeys(ROLES, "hidden")
    ),
    "knowledge:case_suggestions": Rule(args=lambda w: {"case_id": w["case"].pk}, expect=CASE_OF_TEAM_A),
    "api:kb_search": Rule(query=lambda w: {"q": "refund"}, expect=API_AGENTS),
    "api:kb_articles": Rule(expect={**dict.fromkeys(ROLES, "denied"), "supervisor": "ok", "admin": "ok"}),
    "api:kb_article": Rule(
        args=lambda w: {"pk": 999999},
        expect={**dict.fromkeys(ROLES, "denied"), "supervisor": "hidden", "admin": "hidden"},
    ),
}


def _outreach_args(w):
    from django.utils import timezone

    from outreach.models import Outreach

    outreach = Outreach.objects.create(
        customer=w["customer"], source="api", body="x", created_at=timezone.now()
    )
    return {"pk": outreach.pk}


def _campaign_args(w):
    from outreach.models import Campaign

    return {"pk": Campaign.objects.create(name="Matrix").pk, "action": "pause"}


# Outreach (docs/outreach.md): the API and the case form follow the case's visibility,
# campaigns are supervisors', the unsubscribe link is the signed token's.
RULES.update(
    {
        "api:outreach": Rule(method="post", expect=API_AGENTS),
        "api:outreach_detail": Rule(args=_outreach_args, expect=API_CASE_OF_TEAM_A),
        "outreach:unsubscribe": Rule(
            args=lambda w: {"token": "forged"}, expect=dict.fromkeys(ROLES, "hidden")
        ),
        "outreach:case_start": case_rule(data=lambda w: {}),
        "outreach:case_box": case_rule("get"),
        "outreach:campaigns": Rule(expect=SUPERVISORS_ONLY),
        "outreach:campaigns_csv": Rule(expect=SUPERVISORS_ONLY),
        "outreach:campaign_action": Rule(method="post", args=_campaign_args, expect=SUPERVISORS_ONLY),
    }
)

if settings.HELPDESK_SANDBOX:
    # The demo's stand-in provider (mounted only with the sandbox on): the channel's signature decides.
    RULES["sandbox-api-callback"] = Rule(
        method="post", args=lambda w: {"key": w["channel"].key}, expect=dict.fromkeys(ROLES, "denied")
    )
    # The stand-in Graph, Twilio and Telegram APIs: the provider credential decides, not the session.
    RULES["sandbox-graph"] = Rule(
        method="post", args=lambda w: {"version": "v23.0", "node": "me"}, expect=NOBODY_DENIED
    )
    RULES["sandbox-twilio"] = Rule(method="post", args=lambda w: {"account_sid": "AC1"}, expect=NOBODY_DENIED)
    RULES["sandbox-telegram"] = Rule(
        method="post", args=lambda w: {"token": "x", "method": "sendMessage"}, expect=NOBODY_DENIED
    )


@pytest.fixture
def world(settings, tmp_path):
    from conversations.attachments import attachment_save

    settings.MEDIA_ROOT = str(tmp_path / "media")
    team_a, team_b = TeamFactory(name="A"), TeamFactory(name="B")
    users = {
        "no_role": UserFactory(username="nobody", role="no-such-role"),
        "agent_a": UserFactory(username="agent_a"),
        "agent_b": UserFactory(username="agent_b"),
        "supervisor": UserFactory(username="boss", role="supervisors"),
        "admin": UserFactory(username="root", role="admins", is_staff=True, is_superuser=True),
    }
    team_a.members.add(users["agent_a"])
    team_b.members.add(users["agent_b"])
    customer = CustomerFactory(name="Sam Customer")
    identity = IdentityFactory(customer=customer, address="sam@example.com")
    case = CaseFactory(thread=customer.thread, team=team_a)
    message = MessageFactory(case=case, direction="out", author="agent", status="failed", body="x")
    note = MessageFactory(
        case=case,
        kind="note",
        direction="out",
        author="agent",
        body="internal",
        attachments=[attachment_save(content=b"%PDF-1.4", name="n.pdf", content_type="application/pdf")],
    )
    walk_in = CustomerFactory(name="Sandy Walk-in")
    from api.services import api_token_create

    return {
        "team_a": team_a,
        "users": users,
        "customer": customer,
        "identity": identity,
        "token": api_token_create(user=users["agent_a"], name="matrix").token,
        "case": case,
        "message": message,
        "note": note,
        "walk_in": walk_in,
        "channel": ChannelFactory(),
        "webchat": ChannelFactory(kind="webchat", settings={"allowed_origins": ["https://shop.example"]}),
    }


def _outcome(response) -> str:
    status = response.status_code
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "hidden"
    if status in (301, 302) and "/login/" in response.get("Location", ""):
        return "login"
    if status < 500:
        return "ok"
    return f"error {status}"


def test_every_url_has_a_rule():
    missing = sorted(set(_named_urls()) - set(RULES))
    assert not missing, f"URLs without a permission rule (add them to RULES): {missing}"
    assert not set(RULES) - set(_named_urls()), "RULES names a URL that no longer exists"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", _named_urls())
def test_permission_matrix(client, world, name, role):
    rule = RULES.get(name)
    assert rule is not None, f"{name} has no permission rule: add it to RULES"
    if role != "anonymous":
        client.force_login(world["users"][role])
    url = reverse(name, kwargs=rule.args(world) if rule.args else None)
    query = rule.query(world) if rule.query else {}
    if rule.method == "get":
        response = client.get(url, query, headers=rule.headers)
    else:
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        send = getattr(client, rule.method)
        response = send(url, rule.data(world) if rule.data else {}, headers=rule.headers)
    assert _outcome(response) == rule.expect[role], (name, role, response.status_code)


@pytest.mark.parametrize(
    ("role", "expected"),
    [("anonymous", "login"), ("agent_a", "login"), ("supervisor", "login"), ("admin", "ok")],
)
def test_admin_is_for_staff_only(client, world, role, expected):
    from django.contrib import admin

    if role != "anonymous":
        client.force_login(world["users"][role])
    urls = ["/admin/"] + [
        reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist") for m in admin.site._registry
    ]
    outcomes = {url: _outcome(client.get(url)) for url in urls}
    assert set(outcomes.values()) == {expected}, outcomes


def test_every_websocket_route_is_known():
    """A new WebSocket route needs its own visibility tests (test_realtime_visibility)."""
    from helpdesk.routing import websocket_urlpatterns

    # The visitor's socket: tests/channels_adapters/test_webchat.py.
    assert [str(p.pattern) for p in websocket_urlpatterns] == ["ws/agent/", "ws/widget/<slug:key>/"]
