"""Stored attachments: served to the agents who may see the message, never publicly."""

import pytest
from django.test import Client

from conversations.attachments import attachment_save
from tests.factories import CaseFactory, MessageFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def billing_case():
    billing = TeamFactory(name="Billing")
    case = CaseFactory(team=billing)
    image = attachment_save(content=PNG, name="receipt.png", content_type="image/png")
    page = attachment_save(content=b"<script>alert(1)</script>", name="page.html", content_type="text/html")
    message = MessageFactory(case=case, body="Here it is", attachments=[image, page])
    return {"team": billing, "case": case, "message": message, "image": image}


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(message, index):
    return f"/inbox/attachment/{message.pk}/{index}/"


def test_agent_of_the_cases_team_gets_the_file(billing_case):
    agent = UserFactory()
    billing_case["team"].members.add(agent)

    response = _client_for(agent).get(_url(billing_case["message"], 0))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert (
        response["Content-Disposition"].startswith("inline")
        and "receipt.png" in response["Content-Disposition"]
    )
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_file_a_browser_would_run_is_only_ever_a_download(billing_case):
    agent = UserFactory()
    billing_case["team"].members.add(agent)

    response = _client_for(agent).get(_url(billing_case["message"], 1))

    assert response.status_code == 200
    assert (
        response["Content-Disposition"].startswith("attachment")
        and "page.html" in response["Content-Disposition"]
    )
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_agent_of_another_team_gets_404_when_other_teams_history_is_hidden(billing_case, settings):
    settings.HELPDESK = {**settings.HELPDESK, "OTHER_TEAMS_HISTORY": "hidden"}
    outsider = UserFactory()
    TeamFactory(name="Sales").members.add(outsider)

    assert _client_for(outsider).get(_url(billing_case["message"], 0)).status_code == 404


def test_agent_of_another_team_never_gets_an_internal_notes_file(billing_case):
    # Default rule (conversations/visibility.py): another team's conversation shows
    # as history, its internal notes never; the file follows its message.
    note_file = attachment_save(content=PNG, name="internal.png", content_type="image/png")
    note = MessageFactory(
        case=billing_case["case"], kind="note", direction="out", author="agent", attachments=[note_file]
    )
    outsider = UserFactory()
    TeamFactory(name="Sales").members.add(outsider)
    member = UserFactory()
    billing_case["team"].members.add(member)

    assert _client_for(outsider).get(_url(note, 0)).status_code == 404
    assert _client_for(member).get(_url(note, 0)).status_code == 200


def test_a_user_who_is_not_an_agent_gets_403(billing_case):
    customer_user = UserFactory(role="customers")

    assert _client_for(customer_user).get(_url(billing_case["message"], 0)).status_code == 403


def test_supervisor_gets_the_file(billing_case):
    supervisor = UserFactory(role="supervisors")

    assert _client_for(supervisor).get(_url(billing_case["message"], 0)).status_code == 200


def test_anonymous_is_sent_to_log_in(client, billing_case):
    response = client.get(_url(billing_case["message"], 0))

    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_index_past_the_list_or_an_unstored_attachment_is_404(billing_case):
    agent = UserFactory()
    billing_case["team"].members.add(agent)
    remote = MessageFactory(
        case=billing_case["case"],
        attachments=[{"url": "https://x.example/a.png", "content_type": "image/png"}],
    )
    client = _client_for(agent)

    assert client.get(_url(billing_case["message"], 2)).status_code == 404
    assert client.get(_url(remote, 0)).status_code == 404


def test_media_url_is_never_served_even_to_an_agent(billing_case):
    supervisor = UserFactory(role="supervisors")

    response = _client_for(supervisor).get(f"/media/{billing_case['image']['path']}")

    assert response.status_code == 404


def test_the_timeline_links_the_authorized_view_not_media(billing_case):
    agent = UserFactory()
    billing_case["team"].members.add(agent)

    html = _client_for(agent).get(f"/inbox/case/{billing_case['case'].pk}/").content.decode()

    assert f'src="{_url(billing_case["message"], 0)}"' in html
    assert f'href="{_url(billing_case["message"], 1)}"' in html
    assert "/media/" not in html
