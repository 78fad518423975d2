"""The inbox list: who sees what, views, filters, search, keyset pages, unread markers."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import CaseRead, Label
from tests.factories import (
    CaseFactory,
    ChannelFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def listed(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    return [int(pk) for pk in re.findall(r'class="case-row[^"]*" data-case="(\d+)"', html)]


def waiting_case(minutes_ago: int, **kwargs):
    since = timezone.now() - timedelta(minutes=minutes_ago)
    case = CaseFactory(waiting_since=since, last_message_at=since, **kwargs)
    MessageFactory(case=case, channel=case.origin_channel, created_at=since)
    return case


@pytest.fixture
def agent_client(client):
    user = UserFactory()
    client.force_login(user)
    client.user = user
    return client


def test_anonymous_is_sent_to_login_and_non_agents_are_refused(client):
    response = client.get("/inbox/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get("/").headers["Location"] == "/inbox/"
    outsider = UserFactory()
    outsider.groups.clear()
    client.force_login(outsider)
    assert client.get("/inbox/").status_code == 403


def test_login_form_logs_an_agent_in(client):
    UserFactory(username="ana")
    page = client.get("/login/")
    assert b'<label for="id_username">' in page.content
    response = client.post("/login/", {"username": "ana", "password": "pass-word-123", "next": "/inbox/"})
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    assert client.get("/inbox/").status_code == 200


def test_agents_see_their_teams_and_the_shared_queue_supervisors_see_all(client):
    support, billing = TeamFactory(name="Support"), TeamFactory(name="Billing")
    agent = UserFactory()
    support.members.add(agent)
    mine = waiting_case(30, team=support)
    shared = waiting_case(20)
    other = waiting_case(10, team=billing)
    assigned_to_me = waiting_case(5, team=billing, assignee=agent)
    client.force_login(agent)
    assert listed(client.get("/inbox/")) == [mine.pk, shared.pk, assigned_to_me.pk]
    assert client.get(f"/inbox/case/{other.pk}/").status_code == 404
    client.force_login(UserFactory(role="supervisors"))
    assert listed(client.get("/inbox/")) == [mine.pk, shared.pk, other.pk, assigned_to_me.pk]


def test_views_split_cases_by_status_and_assignee(agent_client):
    me = agent_client.user
    open_mine = waiting_case(50, assignee=me)
    open_free = waiting_case(40)
    pending = waiting_case(30, status="pending")
    snoozed = waiting_case(20, status="snoozed", snoozed_until=timezone.now() + timedelta(hours=2))
    resolved = CaseFactory(status="resolved", resolved_at=timezone.now())
    assert listed(agent_client.get("/inbox/?view=mine")) == [open_mine.pk]
    assert listed(agent_client.get("/inbox/?view=unassigned")) == [open_free.pk, pending.pk]
    assert listed(agent_client.get("/inbox/?view=open")) == [open_mine.pk, open_free.pk]
    assert listed(agent_client.get("/inbox/?view=pending")) == [pending.pk]
    assert listed(agent_client.get("/inbox/?view=snoozed")) == [snoozed.pk]
    assert listed(agent_client.get("/inbox/?view=resolved")) == [resolved.pk]


def test_filters_by_channel_team_label_agent_priority(agent_client):
    team = TeamFactory()
    team.members.add(agent_client.user)
    colleague = UserFactory()
    refund = Label.objects.create(name="refund")
    channel = ChannelFactory()
    a = waiting_case(50, origin_channel=channel)
    b = waiting_case(40, team=team, priority=3)
    c = waiting_case(30, assignee=colleague)
    c.labels.add(refund)
    assert listed(agent_client.get(f"/inbox/?channel={channel.pk}")) == [a.pk]
    assert listed(agent_client.get(f"/inbox/?team={team.pk}")) == [b.pk]
    assert listed(agent_client.get("/inbox/?priority=3")) == [b.pk]
    assert listed(agent_client.get(f"/inbox/?label={refund.pk}")) == [c.pk]
    assert listed(agent_client.get(f"/inbox/?agent={colleague.pk}")) == [c.pk]
    # A broken filter value is ignored rather than failing the page.
    assert len(listed(agent_client.get("/inbox/?channel=abc"))) == 3


def test_search_by_name_email_phone_and_message_text(agent_client):
    ana = waiting_case(50)
    ana.thread.customer.name = "Ana Silva"
    ana.thread.customer.save()
    bo = waiting_case(40)
    IdentityFactory(customer=bo.thread.customer, kind="email", address="bo.chen@example.com")
    IdentityFactory(customer=bo.thread.customer, kind="phone", address="+14155550199")
    cy = waiting_case(30)
    MessageFactory(case=cy, body="The replacement blender jar never arrived")
    assert listed(agent_client.get("/inbox/?q=silva")) == [ana.pk]
    assert listed(agent_client.get("/inbox/?q=bo.chen@")) == [bo.pk]
    assert listed(agent_client.get("/inbox/?q=5550199")) == [bo.pk]
    # Full-text search: words in any order, case-insensitive.
    assert listed(agent_client.get("/inbox/?q=JAR+blender")) == [cy.pk]
    assert listed(agent_client.get("/inbox/?q=nothing+like+this")) == []


def test_sorted_by_waiting_time_with_keyset_pages(agent_client):
    cases = [waiting_case(100 - i) for i in range(30)]
    answered = CaseFactory(last_message_at=timezone.now())  # not waiting: after the waiting ones
    first = agent_client.get("/inbox/")
    page1 = listed(first)
    assert page1 == [c.pk for c in cases[:25]]
    assert b"waiting 1 h 40 min" in first.content
    more = re.search(r'href="\?([^"]*after=[^"]+)"', first.content.decode()).group(1).replace("&amp;", "&")
    page2 = listed(agent_client.get("/inbox/?" + more))
    assert page2 == [c.pk for c in cases[25:]] + [answered.pk]


def test_unread_marker_until_the_agent_opens_the_case(agent_client):
    case = waiting_case(5)
    row = re.compile(rf'class="case-row unread" data-case="{case.pk}"')
    assert row.search(agent_client.get("/inbox/").content.decode())
    agent_client.get(f"/inbox/case/{case.pk}/")
    assert CaseRead.objects.filter(case=case, user=agent_client.user).exists()
    assert not row.search(agent_client.get("/inbox/").content.decode())
    # A new message after the visit makes it unread again.
    case.last_message_at = timezone.now() + timedelta(seconds=1)
    case.save()
    assert row.search(agent_client.get("/inbox/").content.decode())


@pytest.mark.parametrize("rows", [1, 50])
def test_inbox_query_count_is_flat(client, django_assert_max_num_queries, rows):
    agent = UserFactory()
    team = TeamFactory()
    team.members.add(agent)
    label = Label.objects.create(name="vip")
    for i in range(rows):
        case = waiting_case(100 - i, team=team if i % 2 else None, assignee=agent if i % 3 else None)
        case.labels.add(label)
    client.force_login(agent)
    with django_assert_max_num_queries(14):
        response = client.get("/inbox/")
    assert len(listed(response)) == min(rows, 25)
    # A search costs two queries more than the list: the matching customers (capped), then
    # the matching case ids, gathered first.
    with django_assert_max_num_queries(10):
        assert len(listed(client.get("/inbox/?partial=rows&q=a"))) <= 25
