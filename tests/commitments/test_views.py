"""Commitments in the inbox: pinned on every case of the customer, in the call's screen pop,
marked and closed from the case page, and the supervisors' list."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from channels_adapters.base import Sender
from commitments import services
from commitments.models import Commitment, CommitmentStatus
from conversations.cases import set_case_status
from conversations.models import Message, MessageKind
from conversations.services import receive_inbound
from tests.commitments.factories import CommitmentFactory
from tests.factories import CaseFactory, ChannelFactory, MessageFactory

pytestmark = pytest.mark.django_db


def _pinned(html: str) -> str:
    start = html.index('id="commitments-case"')
    return html[start : html.index("</section>", start)]


def test_an_open_commitment_is_pinned_on_a_new_case_of_the_customer_on_another_channel(
    client, agent, settings
):
    facebook = ChannelFactory(kind="facebook", name="Facebook page", credentials={"page_id": "1"})
    api = ChannelFactory(name="Shop backend")
    first = receive_inbound(
        channel=facebook, sender=Sender("facebook", "psid-ana"), external_id="m1", text="My jar is cracked"
    ).message
    services.commitment_create(message=first, text="Replacement jar ships in 5 days", by=agent)
    set_case_status(case=first.case, status="resolved", by=agent)
    # Long after the reopen window: the customer writes elsewhere and a new case opens.
    Message.objects.filter(thread=first.thread).update(created_at=timezone.now() - timedelta(days=30))
    first.case.__class__.objects.filter(pk=first.case_id).update(
        resolved_at=timezone.now() - timedelta(days=30)
    )
    from customers.services import identity_add

    identity_add(customer=first.thread.customer, kind="email", address="ana@example.com")
    second = receive_inbound(
        channel=api, sender=Sender("email", "ana@example.com"), external_id="o1", text="Where is my jar?"
    ).message
    assert second.case_id != first.case_id and second.thread_id == first.thread_id
    client.force_login(agent)
    html = client.get(f"/inbox/case/{second.case_id}/").content.decode()
    assert "Replacement jar ships in 5 days" in _pinned(html)
    sidebar = html[html.index('id="commitments-sidebar"') :]
    assert "Replacement jar ships in 5 days" in sidebar[: sidebar.index("</section>")]
    # Fulfilled: no longer pinned anywhere.
    services.commitment_fulfil(commitment=Commitment.objects.get(), by=agent)
    html = client.get(f"/inbox/case/{second.case_id}/").content.decode()
    assert "Replacement jar ships in 5 days" not in _pinned(html)


def test_the_call_screen_pop_fragment_lists_what_the_caller_was_promised(client, org):
    case = CaseFactory(team=org["billing"])
    note = MessageFactory(case=case, kind=MessageKind.NOTE, direction="out", author="agent")
    said = MessageFactory(case=case)
    services.commitment_create(message=said, text="Refund by Friday", by=org["ana"])
    services.commitment_create(message=note, text="Told him by phone: free shipping", by=org["ana"])
    CaseFactory(thread=case.thread, team=org["sales"], status="resolved")  # Sales had a call
    url = f"/commitments/customer/{case.thread.customer_id}/pinned/?place=pop"
    client.force_login(org["ana"])
    pop = client.get(url).content.decode()
    assert "Refund by Friday" in pop and "free shipping" in pop and "2 open commitments" in pop
    # Another team's agent hears the call: what the customer was told, never the internal note.
    client.force_login(org["bo"])
    pop = client.get(url).content.decode()
    assert "Refund by Friday" in pop and "free shipping" not in pop
    # A customer he has no case with at all: not even told they exist.
    stranger = CaseFactory(team=org["billing"]).thread.customer_id
    assert client.get(f"/commitments/customer/{stranger}/pinned/?place=pop").status_code == 404


def test_marking_and_closing_from_the_case_page(client, org):
    case = CaseFactory(team=org["billing"])
    message = MessageFactory(case=case, body="I need it before Friday")
    CaseFactory(thread=case.thread, team=org["sales"], status="resolved")  # Bo's customer too
    client.force_login(org["ana"])
    due = (timezone.localdate() + timedelta(days=3)).isoformat()
    answer = client.post(
        f"/commitments/message/{message.pk}/",
        {"text": "Delivery before Friday", "due_on": due},
        HTTP_X_REQUESTED_WITH="fetch",
    ).json()
    assert answer["ok"] and answer["commitment"]["due_on"] == due
    commitment = Commitment.objects.get()
    # Bad input: a clear error, nothing written.
    answer = client.post(f"/commitments/message/{message.pk}/", {"text": "", "due_on": "31/02/2026"})
    assert answer.status_code == 400 and answer.json()["error"]
    assert Commitment.objects.count() == 1
    # Bo (Sales) may read the customer's words but not act on Billing's case.
    client.force_login(org["bo"])
    answer = client.post(f"/commitments/{commitment.pk}/close/", {"action": "fulfil"})
    assert answer.status_code == 403
    answer = client.post(f"/commitments/message/{message.pk}/", {"text": "Mine"})
    assert answer.status_code == 403
    # A customer he cannot see at all: not even told the message exists.
    elsewhere = MessageFactory(case=CaseFactory(team=org["billing"]))
    assert client.post(f"/commitments/message/{elsewhere.pk}/", {"text": "x"}).status_code == 404
    client.force_login(org["ana"])
    answer = client.post(
        f"/commitments/{commitment.pk}/close/", {"action": "withdraw", "note": "customer cancelled"}
    )
    assert answer.json()["commitment"]["status"] == "withdrawn"
    assert Message.objects.filter(kind=MessageKind.SYSTEM, body__startswith="Commitment withdrawn").exists()


def test_supervisors_list_shows_past_due_first_with_a_flat_query_count(
    client, org, django_assert_max_num_queries
):
    today = timezone.localdate()
    no_date = CommitmentFactory(text="No date")
    later = CommitmentFactory(text="Later", due_on=today + timedelta(days=9))
    soon = CommitmentFactory(text="Soon", due_on=today + timedelta(days=1))
    overdue_long = CommitmentFactory(text="Long overdue", due_on=today - timedelta(days=10))
    overdue = CommitmentFactory(text="Overdue", due_on=today - timedelta(days=1))
    CommitmentFactory(text="Done", status=CommitmentStatus.FULFILLED, due_on=today - timedelta(days=20))
    billing = CommitmentFactory(
        text="Billing's", message=MessageFactory(case=CaseFactory(team=org["billing"]))
    )
    client.force_login(org["boss"])
    client.get("/commitments/")  # warm the per-process caches (content types, sessions)
    with django_assert_max_num_queries(8):
        html = client.get("/commitments/").content.decode()
    order = [int(part.split('"')[0]) for part in html.split('data-commitment="')[1:]]
    assert order == [overdue_long.pk, overdue.pk, soon.pk, later.pk, no_date.pk, billing.pk]
    assert "2 past due" in html and "Done" not in html
    # Twenty more rows cost no query more.
    for _n in range(20):
        CommitmentFactory(
            due_on=today - timedelta(days=2), message=MessageFactory(case=CaseFactory(team=org["sales"]))
        )
    with django_assert_max_num_queries(8):
        assert client.get("/commitments/").status_code == 200
    # Filters: past due only, a team, every status.
    html = client.get(f"/commitments/?past_due=on&team={org['billing'].pk}").content.decode()
    assert "data-commitment=" not in html
    html = client.get("/commitments/?status=all&q=Done").content.decode()
    assert html.count('data-commitment="') == 1
    # Agents do not get the supervisors' page.
    client.force_login(org["ana"])
    assert client.get("/commitments/").status_code == 403


def test_the_demo_data_has_a_past_due_promise_pinned_on_anas_whatsapp_case(client):
    call_command("seed_demo", "--customers", "0", "--days", "1", stdout=io.StringIO())
    ana = Commitment.objects.get(customer__name="Ana Silva")
    assert ana.status == CommitmentStatus.OPEN and ana.due_on < timezone.localdate()
    assert ana.message.channel.kind == "facebook"
    whatsapp_case = ana.customer.thread.cases.exclude(status="resolved").get()
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="agent1"))
    html = client.get(f"/inbox/case/{whatsapp_case.pk}/").content.decode()
    assert "Replacement jar for order #4411" in _pinned(html) and "Past due:" in _pinned(html)
    assert Commitment.objects.count() == 2
