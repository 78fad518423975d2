"""The thread view and everything an agent does from it."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.cases import canned_response_render
from conversations.models import (
    CannedResponse,
    Case,
    DeliveryStatus,
    Label,
    Mention,
    Message,
    MessageKind,
)
from customers.models import Customer, Identity
from tests.factories import (
    CaseFactory,
    ChannelFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
    provider_accepts,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client):
    user = UserFactory(username="alex", first_name="Alex", last_name="Agent")
    client.force_login(user)
    client.user = user
    return client


def ajax(client, url, data):
    return client.post(url, data, headers={"X-Requested-With": "fetch"})


@pytest.fixture
def story():
    """Ana wrote on Facebook weeks ago (resolved case), phoned, now writes on the API channel."""
    customer = CustomerFactory(name="Ana Silva")
    fb = ChannelFactory(kind="facebook", name="Facebook page", credentials={"page_id": "1"})
    api = ChannelFactory(name="Shop API")
    voice = ChannelFactory(kind="voice", name="Phone line", credentials={"phone_number": "+15555550102"})
    fb_id = IdentityFactory(customer=customer, kind="facebook", address="psid-1")
    email = IdentityFactory(customer=customer, kind="email", address="ana@example.com")
    IdentityFactory(customer=customer, kind="phone", address="+14155550123")
    then = timezone.now() - timedelta(days=20)
    old = CaseFactory(
        thread=customer.thread, origin_channel=fb, opened_at=then, status="resolved", resolved_at=then
    )
    MessageFactory(case=old, channel=fb, identity=fb_id, body="My blender jar is cracked", created_at=then)
    MessageFactory(
        case=old,
        channel=fb,
        direction="out",
        author="agent",
        status="read",
        body="A replacement ships today, within 5 days.",
        created_at=then + timedelta(minutes=5),
    )
    MessageFactory(
        case=old,
        channel=voice,
        kind=MessageKind.CALL,
        body="",
        meta={
            "talk_seconds": 252,
            "call_status": "completed",
            "answered": True,
            "recording_url": "https://api.twilio.example/Recordings/RE1",
            "transcript": "I am calling about the jar",
        },
        created_at=then + timedelta(days=1),
    )
    now = timezone.now()
    case = CaseFactory(
        thread=customer.thread, origin_channel=api, opened_at=now, waiting_since=now, last_message_at=now
    )
    MessageFactory(
        case=case,
        channel=api,
        identity=email,
        body="",
        html='<p>Still <b>nothing</b></p><script>alert(1)</script><img src=x onerror="alert(2)">',
        attachments=[
            {"url": "https://files.example/photo.jpg", "content_type": "image/jpeg", "name": "photo.jpg"},
            {"url": "javascript:alert(3)", "content_type": "text/plain", "name": "evil.txt"},
        ],
        created_at=now,
    )
    return {"customer": customer, "case": case, "old": old, "api": api, "fb": fb, "email": email}


def test_thread_shows_the_whole_cross_channel_timeline(agent_client, story):
    response = agent_client.get(f"/inbox/case/{story['case'].pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="notice notice-' not in html  # the timeline never leaks into the notices area
    # Both cases, with their boundaries, every channel.
    assert "My blender jar is cracked" in html and "within 5 days" in html
    assert f'data-boundary="{story["old"].pk}"' in html and f'data-boundary="{story["case"].pk}"' in html
    assert 'aria-label="Facebook Messenger"' in html and 'aria-label="Phone"' in html
    # The call with duration, recording link and transcript.
    assert "4 min 12 s" in html and "https://api.twilio.example/Recordings/RE1" in html
    assert "I am calling about the jar" in html
    # Delivery status per outbound message.
    assert 'data-status="read"' in html
    # Email HTML sanitized: markup kept, script and handlers gone; javascript: links dropped.
    assert "<b>nothing</b>" in html
    assert "alert(1)" not in html and "onerror" not in html and "javascript:" not in html
    assert '<img src="https://files.example/photo.jpg"' in html
    # Sidebar: identities and previous cases.
    assert "psid-1" in html and "ana@example.com" in html and "+14155550123" in html
    assert f"#{story['old'].pk}</a>" in html


def test_timeline_names_what_the_page_did_not_load_for_itself(agent_client, story):
    # The page hands the timeline the agents, channels and identities it read anyway: an
    # author who left (no longer among the agents) and an identity since moved to another
    # customer are read for the timeline; a channel switched off is still named there.
    case = story["case"]
    gone = UserFactory(first_name="Gina", last_name="Gone", is_active=False)
    old_channel = ChannelFactory(kind="facebook", name="Old Facebook page", is_active=False)
    elsewhere = IdentityFactory(
        customer=CustomerFactory(), kind="facebook", address="psid-9", display_name="Ana S."
    )
    MessageFactory(case=case, channel=old_channel, identity=elsewhere, body="From the old page")
    MessageFactory(
        case=case, channel=story["api"], direction="out", author="agent", author_user=gone, body="Bye"
    )
    Case.objects.filter(pk=case.pk).update(assignee=agent_client.user)
    html = agent_client.get(f"/inbox/case/{case.pk}/").content.decode()
    assert '<span class="author">Gina Gone</span>' in html
    assert '<span class="via">via Old Facebook page</span>' in html
    assert '<span class="author">Ana S.</span>' in html
    # The assignee select, rendered in Python: the assignee chosen, every agent listed.
    assert f'<option value="{agent_client.user.pk}" selected>Alex Agent</option>' in html
    assert html.count("Gina Gone") == 1  # in the timeline, not among the assignees
    assert "<code>@alex</code>" not in html  # one does not mention oneself


def test_reply_goes_on_the_latest_inbound_channel_by_default(agent_client, story):
    page = agent_client.get(f"/inbox/case/{story['case'].pk}/").content.decode()
    reply_select = page[page.index('id="reply-channel"') :]
    selected = re.search(r'<option value="(\d+)" selected', reply_select)
    assert int(selected.group(1)) == story["api"].pk
    # The phone line is never offered for a written reply.
    assert "Phone line →" not in page
    url = f"/inbox/case/{story['case'].pk}/reply/"
    response = ajax(agent_client, url, {"mode": "reply", "body": "On it!"})
    assert response.json() == {"ok": True, "error": "", "message": response.json()["message"]}
    message = Message.objects.get(pk=response.json()["message"])
    assert message.channel == story["api"] and message.status == DeliveryStatus.QUEUED
    assert message.author_user == agent_client.user and message.identity == story["email"]
    story["case"].refresh_from_db()
    # Queued is not answered yet (issue 18): the case waits until the provider accepts the reply.
    assert story["case"].waiting_since is not None and story["case"].first_response_at is None
    provider_accepts(message)
    story["case"].refresh_from_db()
    assert story["case"].waiting_since is None and story["case"].first_response_at == message.sent_at


def test_reply_refused_by_a_channel_rule_is_explained(agent_client, story):
    # Ana last wrote on Facebook 20 days ago: Messenger's 24-hour window is closed.
    page = agent_client.get(f"/inbox/case/{story['case'].pk}/").content.decode()
    rule = re.search(rf'<option value="{story["fb"].pk}"[^>]*data-rule="([^"]+)"', page)
    assert rule and "does not allow a reply" in rule.group(1)
    response = ajax(
        agent_client,
        f"/inbox/case/{story['case'].pk}/reply/",
        {"mode": "reply", "body": "Hello?", "channel": story["fb"].pk},
    )
    assert response.status_code == 400 and response.json()["ok"] is False
    assert "does not allow a reply" in response.json()["error"]
    assert not Message.objects.filter(body="Hello?").exists()


def test_failed_send_shows_reason_and_retry_requeues(agent_client, story):
    failed = MessageFactory(
        case=story["case"],
        channel=story["api"],
        direction="out",
        author="agent",
        status="failed",
        error="The API callback refused the message (HTTP 400): unknown user",
    )
    html = agent_client.get(f"/inbox/case/{story['case'].pk}/").content.decode()
    assert "unknown user" in html and f'action="/inbox/message/{failed.pk}/retry/"' in html
    response = ajax(agent_client, f"/inbox/message/{failed.pk}/retry/", {})
    assert response.json()["ok"] is True
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.QUEUED and failed.error == ""
    again = ajax(agent_client, f"/inbox/message/{failed.pk}/retry/", {})
    assert again.status_code == 400 and "Only a failed message" in again.json()["error"]


def test_note_with_mention_notifies_the_colleague(agent_client, story, client):
    blair = UserFactory(username="blair")
    response = ajax(
        agent_client,
        f"/inbox/case/{story['case'].pk}/reply/",
        {"mode": "note", "body": "@blair can you check the refund? @nobody @alex"},
    )
    note = Message.objects.get(pk=response.json()["message"])
    assert note.kind == MessageKind.NOTE and note.channel is None
    # Only real colleagues are notified, and never the author.
    assert list(Mention.objects.values_list("user__username", flat=True)) == ["blair"]
    html = agent_client.get(f"/inbox/case/{story['case'].pk}/").content.decode()
    assert 'class="msg note out' in html and "Internal note" in html
    from django.test import Client

    blair_client = Client()
    blair_client.force_login(blair)
    assert b'aria-label="1 unread"' in blair_client.get("/inbox/").content
    mentions = blair_client.get("/inbox/mentions/").content.decode()
    assert "can you check the refund?" in mentions
    assert Mention.objects.get().read_at is not None


def test_canned_responses_fill_placeholders(agent_client, story):
    CannedResponse.objects.create(
        shortcut="thanks",
        title="Thanks",
        body="Hi {{customer.first_name}}, {{ agent.first_name }} here. {{x}}",
    )
    other_team = TeamFactory()
    CannedResponse.objects.create(shortcut="secret", title="Other team's", body="no", team=other_team)
    html = agent_client.get(f"/inbox/case/{story['case'].pk}/").content.decode()
    assert '"shortcut": "thanks"' in html and "Hi Ana, Alex here. {{x}}" in html
    assert '"shortcut": "secret"' not in html
    canned = CannedResponse.objects.get(shortcut="thanks")
    assert canned_response_render(canned=canned, customer=Customer(name="Bo")) == "Hi Bo,  here. {{x}}"


def test_case_actions_write_through_services(agent_client, story):
    case, me = story["case"], agent_client.user
    url = f"/inbox/case/{case.pk}/"
    team = TeamFactory(name="Billing")
    team.members.add(me)
    label = Label.objects.create(name="refund")
    assert ajax(agent_client, url + "assign/", {"assignee": "me"}).json()["ok"]
    assert ajax(agent_client, url + "assign/", {"team": team.pk}).json()["ok"]
    assert ajax(agent_client, url + "priority/", {"priority": 3}).json()["ok"]
    assert ajax(agent_client, url + "labels/", {"labels": [label.pk]}).json()["ok"]
    refused = ajax(agent_client, url + "status/", {"status": "snoozed"})
    assert refused.status_code == 400 and "until when" in refused.json()["error"]
    until = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert ajax(agent_client, url + "status/", {"status": "snoozed", "snoozed_until": until}).json()["ok"]
    # The agent's wall clock: 09:30 in UTC-5 (offset +300 min) is 14:30 UTC.
    local = (timezone.now() + timedelta(days=2)).replace(hour=9, minute=30, second=0, microsecond=0)
    form = {"status": "snoozed", "snoozed_until": local.strftime("%Y-%m-%dT%H:%M"), "tz_offset": "300"}
    assert ajax(agent_client, url + "status/", form).json()["ok"]
    case.refresh_from_db()
    assert (case.snoozed_until.hour, case.snoozed_until.minute) == (14, 30)
    assert case.assignee == me and case.team == team and case.priority == 3
    assert case.status == "snoozed" and case.snoozed_until > timezone.now()
    assert list(case.labels.all()) == [label]
    events = list(Message.objects.filter(case=case, kind="system").values_list("body", flat=True))
    assert events[0] == "Case assigned to Alex Agent by Alex Agent"
    assert "Priority set to Urgent by Alex Agent" in events and "Labels +refund by Alex Agent" in events
    assert ajax(agent_client, url + "status/", {"status": "resolved"}).json()["ok"]
    case.refresh_from_db()
    assert case.status == "resolved" and case.resolved_at is not None
    # The panel fragment (live refresh) shows the new state.
    panel = agent_client.get(url + "?partial=panel").content.decode()
    assert "st-resolved" in panel and "Alex Agent" in panel


def test_merge_preview_then_confirm(agent_client, story):
    twin = CustomerFactory(name="A. Silva")
    IdentityFactory(customer=twin, kind="phone", address="+14155550999")
    twin_case = CaseFactory(thread=twin.thread, status="resolved", resolved_at=timezone.now())
    MessageFactory(case=twin_case, body="Order 4411 question")
    found = agent_client.get(f"/inbox/customers/?q=5550999&exclude={story['customer'].pk}").json()
    assert [r["id"] for r in found["results"]] == [twin.pk]
    url = f"/inbox/case/{story['case'].pk}/merge/"
    preview = agent_client.get(url, {"other": twin.pk}).content.decode()
    assert "Confirm merge" in preview and "+14155550999" in preview
    assert Customer.objects.filter(pk=twin.pk).exists()  # a preview writes nothing
    assert ajax(agent_client, url, {"other": twin.pk}).json()["ok"]
    assert not Customer.objects.filter(pk=twin.pk).exists()
    assert Identity.objects.get(address="+14155550999").customer == story["customer"]
    html = agent_client.get(f"/inbox/case/{story['case'].pk}/").content.decode()
    assert "Order 4411 question" in html and "Merged A. Silva into this customer" in html


def test_live_fragments_return_only_new_or_one_message(agent_client, story):
    case = story["case"]
    last = Message.objects.filter(thread=case.thread).order_by("-pk").first()
    new = MessageFactory(case=case, body="Just arrived")
    after = agent_client.get(f"/inbox/case/{case.pk}/?partial=timeline&after={last.pk}").content.decode()
    assert "Just arrived" in after and "My blender jar" not in after
    one = agent_client.get(f"/inbox/case/{case.pk}/?partial=timeline&message={new.pk}").content.decode()
    assert one.count("data-message=") == 1


def test_next_case_follows_the_queue(agent_client):
    now = timezone.now()
    first = CaseFactory(waiting_since=now - timedelta(minutes=9))
    second = CaseFactory(waiting_since=now - timedelta(minutes=5))
    response = agent_client.get(f"/inbox/case/{first.pk}/next/")
    assert response["Location"] == f"/inbox/case/{second.pk}/"


@pytest.mark.parametrize("messages", [1, 50])
def test_thread_view_query_count_is_flat(client, django_assert_max_num_queries, messages):
    agent = UserFactory()
    client.force_login(agent)
    customer = CustomerFactory()
    identity = IdentityFactory(customer=customer)
    channels = [ChannelFactory() for _ in range(2)]
    cases = [CaseFactory(thread=customer.thread, origin_channel=channels[0]) for _ in range(1)]
    Case.objects.filter(pk=cases[0].pk).update(status="open")
    for i in range(messages):
        MessageFactory(
            case=cases[0],
            channel=channels[i % 2],
            identity=identity,
            author_user=agent if i % 2 else None,
            direction="out" if i % 2 else "in",
            author="agent" if i % 2 else "customer",
            status="sent" if i % 2 else None,
            attachments=[{"url": "https://x.example/a.png", "content_type": "image/png"}] * (i % 5 == 0),
        )
    with django_assert_max_num_queries(17):
        response = client.get(f"/inbox/case/{cases[0].pk}/")
    assert response.content.decode().count("data-message=") == messages


def test_agent_logs_a_desk_phone_call_on_the_thread(agent_client, story):
    case = story["case"]
    url = f"/inbox/case/{case.pk}/call/"
    form = {"direction": "outbound", "number": "+1 415 555 0177", "answered": "on", "minutes": 4}
    assert ajax(agent_client, url, {**form, "note": "Promised a refund by Friday"}).json()["ok"]
    call = Message.objects.get(case=case, kind="call")
    assert call.body == "Promised a refund by Friday" and call.author_user == agent_client.user
    assert call.meta["talk_seconds"] == 240 and call.meta["answered"] is True
    assert call.meta["to"] == "+14155550177"
    assert case.thread.customer.identities.filter(kind="phone", address="+14155550177").exists()
    refused = ajax(agent_client, url, {"direction": "sideways"})
    assert refused.status_code == 400
    html = agent_client.get(f"/inbox/case/{case.pk}/").content.decode()
    assert "Promised a refund by Friday" in html and f'action="/inbox/case/{case.pk}/call/"' in html
