"""Issue 19's inbox conventions: search over every case, phones in any format, counts per
view, Not sent previews, the live sidebar fragment, reply attachments, navigation."""

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import selectors
from conversations.models import CaseRead, Message
from conversations.reply_files import reply_files_check
from conversations.visibility import cases_visible_to
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


def listed(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return [
        int(pk) for pk in re.findall(r'class="case-row[^"]*" data-case="(\d+)"', response.content.decode())
    ]


def ajax(client, url, data):
    return client.post(url, data, headers={"X-Requested-With": "fetch"})


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def agent_client(client):
    user = UserFactory(username="alex")
    client.force_login(user)
    client.user = user
    return client


def _case_with_message(**kwargs):
    now = timezone.now()
    case = CaseFactory(last_message_at=now, waiting_since=now, **kwargs)
    MessageFactory(case=case, channel=case.origin_channel, created_at=now)
    return case


# Search -----------------------------------------------------------------------------


def test_search_from_any_view_covers_every_status_and_only_what_the_agent_may_see(agent_client):
    customer = CustomerFactory(name="Marta Quintero")
    resolved = _case_with_message(thread=customer.thread, status="resolved", resolved_at=timezone.now())
    other_team = TeamFactory()
    hidden = _case_with_message(thread=CustomerFactory(name="Marta Quintana").thread, team=other_team)
    # From Mine (which holds neither), the search still finds the resolved case.
    response = agent_client.get("/inbox/?view=mine&q=Marta")
    assert listed(response) == [resolved.pk]
    assert hidden.pk not in listed(response)
    html = response.content.decode()
    assert 'data-view="all" aria-current="page"' in html
    # Clearing the search goes back to the view the agent searched from.
    assert 'href="?view=mine">Clear the search' in html
    assert listed(agent_client.get("/inbox/?view=all")) == [resolved.pk]


@pytest.mark.parametrize("id_list_max", [1000, 1])
def test_search_finds_the_same_cases_whether_few_or_many_match(agent_client, monkeypatch, id_list_max):
    # Few matches are read by id, many by walking the cases newest first (selectors._search):
    # both answer the same, in the same order, and keep to what the agent may see.
    monkeypatch.setattr(selectors, "SEARCH_CASE_LIST_MAX", id_list_max)
    by_name = _case_with_message(thread=CustomerFactory(name="Irene Zamora").thread)
    by_address = _case_with_message()
    IdentityFactory(customer=by_address.thread.customer, kind="email", address="zamora@example.com")
    # Two of each: with a cap of 1 every source is "many" (tested per case, selectors._search).
    IdentityFactory(customer=by_address.thread.customer, kind="email", address="zamora.work@example.com")
    by_text = _case_with_message()
    MessageFactory(thread=by_text.thread, case=by_text, body="the zamora order never came")
    MessageFactory(thread=by_text.thread, case=by_text, body="still no zamora order")
    _case_with_message(thread=CustomerFactory(name="Zamora Hidden").thread, team=TeamFactory())
    hidden_text = _case_with_message(team=TeamFactory())
    MessageFactory(thread=hidden_text.thread, case=hidden_text, body="zamora, other team")
    _case_with_message()  # no match at all
    found = listed(agent_client.get("/inbox/", {"q": "zamora"}))
    assert sorted(found) == sorted([by_name.pk, by_address.pk, by_text.pk])
    assert found == listed(agent_client.get("/inbox/", {"q": "zamora", "view": "all"}))


@pytest.mark.parametrize("typed", ["+1 415 555 0123", "(415) 555-0123", "415.555.0123", "415 555 0123"])
def test_phone_numbers_typed_any_way_match_the_normalized_identity(agent_client, typed):
    customer = CustomerFactory(name="Bruno")
    IdentityFactory(customer=customer, kind="phone", address="+14155550123")
    case = _case_with_message(thread=customer.thread)
    _case_with_message()  # someone else
    assert listed(agent_client.get("/inbox/", {"q": typed})) == [case.pk]


def test_phone_search_numbers_reads_only_numbers():
    assert selectors.phone_search_numbers("(415) 555-0123") == ["+14155550123"]
    assert selectors.phone_search_numbers("+34 612 34 56 78") == ["+34612345678"]
    assert selectors.phone_search_numbers("blender") == []
    assert selectors.phone_search_numbers("2024") == []


# Counts and title -----------------------------------------------------------------------


def test_counts_per_view_and_unread_in_one_query(agent_client):
    agent = agent_client.user
    mine = _case_with_message(assignee=agent)
    _case_with_message(assignee=agent, status="pending")
    _case_with_message()  # unassigned, unread
    read = _case_with_message()
    CaseRead.objects.create(case=read, user=agent, read_at=timezone.now() + timedelta(seconds=1))
    _case_with_message(status="snoozed", snoozed_until=timezone.now() + timedelta(hours=1))
    _case_with_message(team=TeamFactory())  # another team's: not counted for this agent
    CaseFactory(status="resolved", resolved_at=timezone.now())
    list(cases_visible_to(user=agent))  # the user's teams and groups, read once per request
    with CaptureQueriesContext(connection) as queries:
        counts = selectors.inbox_counts(user=agent)
    assert len(queries) == 1
    assert counts["views"] == {"mine": 2, "unassigned": 2, "open": 3, "pending": 1, "snoozed": 1}
    # Unread: Mine and Unassigned cases with news since the agent last looked.
    assert counts["unread"] == 3
    CaseRead.objects.create(case=mine, user=agent, read_at=timezone.now() + timedelta(seconds=1))
    assert selectors.inbox_counts(user=agent)["unread"] == 2
    page = agent_client.get("/inbox/").content.decode()
    assert "<title>(2) Inbox" in page
    assert re.search(r'data-count="mine"[^>]*>2<', page)
    assert agent_client.get("/inbox/?partial=counts").json() == {
        "views": {"mine": 2, "unassigned": 2, "open": 3, "pending": 1, "snoozed": 1},
        "unread": 2,
    }


# Not sent ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "marker"), [("failed", "Not sent:"), ("unknown", "Maybe not sent:"), ("sent", "You:")]
)
def test_list_preview_says_when_the_last_reply_did_not_go_out(agent_client, status, marker):
    case = _case_with_message()
    MessageFactory(
        case=case,
        direction="out",
        author="agent",
        status=status,
        body="Your refund is on its way",
        created_at=timezone.now() + timedelta(seconds=1),
    )
    html = agent_client.get("/inbox/").content.decode()
    row = re.search(rf'<li class="case-row[^"]*" data-case="{case.pk}".*?</li>', html).group(0)
    assert marker in row and "Your refund is on its way" in row
    if status != "sent":
        assert "You:" not in row


# Live sidebar ---------------------------------------------------------------------------------


def test_sidebar_fragment_shows_the_status_after_resolving(agent_client):
    case = _case_with_message()
    before = agent_client.get(f"/inbox/case/{case.pk}/?partial=sidebar").content.decode()
    assert 'id="customer-live"' in before and "st-open" in before
    assert ajax(agent_client, f"/inbox/case/{case.pk}/status/", {"status": "resolved"}).json()["ok"]
    after = agent_client.get(f"/inbox/case/{case.pk}/?partial=sidebar").content.decode()
    assert "st-resolved" in after and "st-open" not in after


def test_case_page_has_no_per_field_apply_buttons_for_script_users(agent_client):
    case = _case_with_message()
    html = agent_client.get(f"/inbox/case/{case.pk}/").content.decode()
    for field in ("assignee", "team", "status", "priority"):
        assert re.search(rf'<select name="{field}"[^>]*data-autosubmit', html), field
    # The Set/Assign/Move/Save buttons only exist for browsers without the script.
    assert '<noscript><button type="submit">Assign</button></noscript>' in html


# Attachments -----------------------------------------------------------------------------------


def _reply_case(kind="api", **credentials):
    customer = CustomerFactory(name="Carla")
    channel = ChannelFactory(kind=kind, **({"credentials": credentials} if credentials else {}))
    address = {"api": "carla-1", "email": "carla@example.com"}.get(kind, "+14155550199")
    identity_kind = {"api": "api", "email": "email"}.get(kind, "phone")
    identity = IdentityFactory(customer=customer, kind=identity_kind, address=address)
    case = CaseFactory(thread=customer.thread, origin_channel=channel)
    MessageFactory(case=case, channel=channel, identity=identity)
    return case, channel


def test_reply_with_a_file_goes_out_with_the_attachment(agent_client):
    case, channel = _reply_case()
    upload = SimpleUploadedFile("invoice.pdf", b"%PDF-1.4 test", content_type="application/pdf")
    response = ajax(
        agent_client,
        f"/inbox/case/{case.pk}/reply/",
        {"mode": "reply", "channel": channel.pk, "body": "Here is the invoice", "files": [upload]},
    )
    assert response.json()["ok"], response.content
    message = Message.objects.get(pk=response.json()["message"])
    assert message.direction == "out" and message.status == "queued"
    [attachment] = message.attachments
    assert attachment["name"] == "invoice.pdf" and attachment["content_type"] == "application/pdf"
    assert attachment["size"] == len(b"%PDF-1.4 test")
    # Shown in the thread through the authorized link.
    html = agent_client.get(f"/inbox/case/{case.pk}/").content.decode()
    assert f"/inbox/attachment/{message.pk}/0/" in html


def test_a_file_over_the_limit_is_refused_and_nothing_is_sent(agent_client, settings):
    settings.HELPDESK = {**settings.HELPDESK, "REPLY_MAX_ATTACHMENT_BYTES": 10}
    case, channel = _reply_case()
    upload = SimpleUploadedFile("big.pdf", b"x" * 11, content_type="application/pdf")
    before = Message.objects.count()
    response = ajax(
        agent_client,
        f"/inbox/case/{case.pk}/reply/",
        {"mode": "reply", "channel": channel.pk, "body": "Here", "files": [upload]},
    )
    assert response.status_code == 400
    assert "big.pdf is 11" in response.json()["error"] and "the limit is 10" in response.json()["error"]
    assert Message.objects.count() == before


def test_a_channel_that_cannot_send_files_says_so(agent_client):
    case, channel = _reply_case(kind="sms", account_sid="AC1", auth_token="t", from_number="+15555550100")
    upload = SimpleUploadedFile("photo.png", b"\x89PNG", content_type="image/png")
    response = ajax(
        agent_client,
        f"/inbox/case/{case.pk}/reply/",
        {"mode": "reply", "channel": channel.pk, "body": "Look", "files": [upload]},
    )
    assert response.status_code == 400
    assert "cannot send files from the helpdesk yet" in response.json()["error"]
    assert not Message.objects.filter(direction="out", case=case).exists()
    page = agent_client.get(f"/inbox/case/{case.pk}/").content.decode()
    assert re.search(rf'<option value="{channel.pk}"[^>]*data-files=""', page)


def test_webchat_allows_only_its_configured_types(settings):
    channel = ChannelFactory(kind="webchat", credentials={})
    ok = SimpleUploadedFile("a.png", b"\x89PNG", content_type="image/png")
    reply_files_check(channel=channel, files=[ok])
    bad = SimpleUploadedFile("a.exe", b"MZ", content_type="application/x-msdownload")
    with pytest.raises(Exception, match=r"a.exe \(application/x-msdownload\) cannot be sent"):
        reply_files_check(channel=channel, files=[bad])


def test_files_are_refused_on_a_note(agent_client):
    case, channel = _reply_case()
    upload = SimpleUploadedFile("x.txt", b"hi", content_type="text/plain")
    response = ajax(
        agent_client, f"/inbox/case/{case.pk}/reply/", {"mode": "note", "body": "n", "files": [upload]}
    )
    assert response.status_code == 400 and "not a note" in response.json()["error"]


# Navigation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "dashboard", "admin"),
    [("agents", False, False), ("supervisors", True, False), ("admins", True, True)],
)
def test_navigation_follows_the_role(client, role, dashboard, admin):
    client.force_login(UserFactory(role=role))
    html = client.get("/inbox/").content.decode()
    assert ('href="/dashboard/"' in html) is dashboard
    assert ('href="/commitments/"' in html) is dashboard  # the supervisors' list of promises
    assert ('href="/admin/"' in html) is admin
    assert "Log out" in html and 'rel="icon"' in html
    assert 'name="color-scheme" content="light dark"' in html


def test_dashboard_has_log_out(client):
    client.force_login(UserFactory(role="supervisors"))
    html = client.get("/dashboard/").content.decode()
    assert 'action="/logout/"' in html


def test_javascript_catalog_is_served_and_loaded(agent_client):
    response = agent_client.get("/jsi18n/")
    assert response.status_code == 200 and b"gettext" in response.content
    assert 'src="/jsi18n/"' in agent_client.get("/inbox/").content.decode()


# Spanish ---------------------------------------------------------------------------------------


def test_inbox_and_its_script_speak_spanish(agent_client, settings):
    settings.LANGUAGE_CODE = "es"
    case = _case_with_message()
    page = agent_client.get("/inbox/?view=mine").content.decode()
    assert "Míos" in page and "Buscar en todos los casos" in page
    thread = agent_client.get(f"/inbox/case/{case.pk}/").content.decode()
    assert "Adjuntar archivos" in thread and "Responder al cliente" in thread and "Asignármelo" in thread
    catalog = agent_client.get("/jsi18n/").content.decode()
    assert "Notificaciones activadas" in catalog and "Deshacer" in catalog


def test_other_apps_can_add_a_cell_to_each_row(agent_client):
    from django.utils.html import format_html

    from conversations.templatetags import inbox as inbox_tags

    case = _case_with_message()

    def checkbox(c):
        return format_html('<input type="checkbox" class="bulk" value="{}" aria-label="Select">', c.pk)

    inbox_tags.ROW_PREFIXES.append(checkbox)
    try:
        html = agent_client.get("/inbox/").content.decode()
    finally:
        inbox_tags.ROW_PREFIXES.remove(checkbox)
    assert f'data-case="{case.pk}" data-thread="{case.thread_id}"><input type="checkbox" class="bulk"' in html
    assert 'class="bulk"' not in agent_client.get("/inbox/").content.decode()
