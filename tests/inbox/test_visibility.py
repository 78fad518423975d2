"""An agent sees only what their teams may see: thread, customer search and merge.

Two teams (Billing: ana, Sales: bo) and a supervisor; the rule is DESIGN.md's
"Visibility" and docs/visibility.md's history rule.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from conversations.models import Case, Message, MessageKind
from customers.models import Customer
from customers.services import merge_customers
from tests.factories import (
    CaseFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
)

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


def sales_customer(org, *, name="Sara Sales", open_case=True):
    """A customer whose case belongs to Sales, with a customer message and an internal note."""
    customer = CustomerFactory(name=name)
    IdentityFactory(customer=customer, address=f"{name.split()[0].lower()}@example.com")
    then = timezone.now() - timedelta(days=30)
    case = CaseFactory(
        thread=customer.thread,
        team=org["sales"],
        opened_at=then,
        status="open" if open_case else "resolved",
        resolved_at=None if open_case else then,
    )
    MessageFactory(case=case, body="I want the premium plan", created_at=then)
    MessageFactory(
        case=case,
        direction="out",
        author="agent",
        kind=MessageKind.NOTE,
        body="Internal: offer 20% max",
        created_at=then + timedelta(minutes=1),
    )
    return customer, case


def billing_customer(org):
    """The acting agent's own customer, with a case of Billing in progress."""
    mine = CustomerFactory(name="Mine")
    return mine, CaseFactory(thread=mine.thread, team=org["billing"])


def test_new_unrouted_case_shows_other_teams_conversation_but_never_their_notes(client, org):
    customer, _ = sales_customer(org, open_case=False)
    new = CaseFactory(thread=customer.thread)  # unrouted: every agent may open it
    MessageFactory(case=new, body="Hello again")

    page = login(client, org["ana"]).get(f"/inbox/case/{new.pk}/").content.decode()
    assert "Hello again" in page
    assert "I want the premium plan" in page  # what the customer wrote stays history
    assert "offer 20% max" not in page

    page = login(client, org["boss"]).get(f"/inbox/case/{new.pk}/").content.decode()
    assert "offer 20% max" in page  # supervisors see everything


def test_history_setting_hidden_shows_nothing_of_other_teams_cases(client, org, settings):
    settings.HELPDESK = {**settings.HELPDESK, "OTHER_TEAMS_HISTORY": "hidden"}
    customer, old = sales_customer(org, open_case=False)
    new = CaseFactory(thread=customer.thread)
    MessageFactory(case=new, body="Hello again")
    page = login(client, org["ana"]).get(f"/inbox/case/{new.pk}/").content.decode()
    assert "Hello again" in page and "premium plan" not in page
    # The other team's case is listed by number only, with no link into it.
    assert f'href="/inbox/case/{old.pk}/"' not in page and f"#{old.pk}" in page


def test_timeline_fragment_follows_the_same_rule(client, org):
    customer, old = sales_customer(org, open_case=False)
    new = CaseFactory(thread=customer.thread)
    note = Message.objects.get(case=old, kind=MessageKind.NOTE)
    fragment = login(client, org["ana"]).get(f"/inbox/case/{new.pk}/?partial=timeline&message={note.pk}")
    assert "offer 20%" not in fragment.content.decode()


def test_other_teams_case_is_404_for_an_agent(client, org):
    _, case = sales_customer(org)
    assert login(client, org["ana"]).get(f"/inbox/case/{case.pk}/").status_code == 404
    assert login(client, org["bo"]).get(f"/inbox/case/{case.pk}/").status_code == 200


def test_customer_search_returns_only_customers_the_agent_may_see(client, org):
    sales_customer(org, name="Sara Sales")
    mine = CustomerFactory(name="Sara Billing")
    CaseFactory(thread=mine.thread, team=org["billing"])
    nobody = CustomerFactory(name="Sara Newcomer")  # no case yet: nobody owns her

    def names(user):
        response = login(client, user).get("/inbox/customers/?q=sara")
        return {r["name"] for r in response.json()["results"]}

    assert names(org["ana"]) == {"Sara Billing", "Sara Newcomer"}
    assert names(org["bo"]) == {"Sara Sales", "Sara Newcomer"}
    assert names(org["boss"]) == {"Sara Sales", "Sara Billing", "Sara Newcomer"}
    assert nobody.pk  # listed for all three


def test_customer_search_matches_addresses_only_of_visible_customers(client, org):
    sales_customer(org, name="Sara Sales")
    response = login(client, org["ana"]).get("/inbox/customers/?q=sara@example")
    assert response.json()["results"] == []


def test_merge_of_an_invisible_customer_is_refused_and_changes_nothing(client, org):
    other, their_case = sales_customer(org)
    mine, case = billing_customer(org)
    client = login(client, org["ana"])
    assert client.get(f"/inbox/case/{case.pk}/merge/?other={other.pk}").status_code == 404
    assert client.post(f"/inbox/case/{case.pk}/merge/", {"other": other.pk}).status_code == 404
    assert Customer.objects.filter(pk=other.pk).exists()
    assert Case.objects.get(pk=their_case.pk).thread.customer_id == other.pk


def test_merge_never_folds_away_a_case_in_progress_of_another_team(org):
    other, their_case = sales_customer(org)
    mine, _ = billing_customer(org)
    with pytest.raises(ValidationError, match="in progress with team Sales"):
        merge_customers(survivor=mine, merged=other, merged_by=org["boss"])
    assert Case.objects.filter(pk=their_case.pk, thread__customer=other).exists()
    assert Customer.objects.filter(pk=other.pk).exists()


def test_merge_keeps_each_resolved_case_with_its_team(org):
    other, their_case = sales_customer(org, open_case=False)
    mine, ours = billing_customer(org)
    merge_customers(survivor=mine, merged=other, merged_by=org["boss"])
    their_case.refresh_from_db()
    assert their_case.thread.customer_id == mine.pk and their_case.team_id == org["sales"].pk
    assert Case.objects.get(pk=ours.pk).team_id == org["billing"].pk


def test_merge_folds_an_unrouted_case_in_progress(org):
    other = CustomerFactory(name="Walk-in")
    theirs = CaseFactory(thread=other.thread)
    MessageFactory(case=theirs, body="first words")
    mine, ours = billing_customer(org)
    merge_customers(survivor=mine, merged=other, merged_by=org["ana"])
    assert Message.objects.get(body="first words").case_id == ours.pk


def test_the_service_refuses_a_merge_by_someone_who_cannot_see_both(org):
    other, _ = sales_customer(org)
    mine, _ = billing_customer(org)
    with pytest.raises(ValidationError, match="only merge customers you can see"):
        merge_customers(survivor=mine, merged=other, merged_by=org["ana"])
