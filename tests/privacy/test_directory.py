import pytest
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from conversations.models import Message
from customers.models import Customer, CustomerMerge, Identity
from helpdesk import roles
from tests.factories import CaseFactory, CustomerFactory, IdentityFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org):
    """A Billing customer, a Sales customer and an unrouted one (conftest's org: ana in Billing)."""
    billing = CaseFactory(team=org["billing"]).thread.customer
    sales = CaseFactory(team=org["sales"]).thread.customer
    nobody = CustomerFactory(name="Nobody Yet")
    for customer in (billing, sales):
        IdentityFactory(customer=customer)
        MessageFactory(case=customer.thread.cases.get(), body=f"words of {customer.pk}")
    return {"billing": billing, "sales": sales, "nobody": nobody}


def test_the_list_shows_only_customers_the_agent_may_see_without_n_plus_one(
    client, org, world, django_assert_max_num_queries
):
    for _ in range(20):
        IdentityFactory(customer=CaseFactory(team=org["billing"]).thread.customer)
    client.force_login(org["ana"])
    with django_assert_max_num_queries(8):
        page = client.get(reverse("privacy:customers"))
    shown = {c.pk for c in page.context["directory"].customers}
    assert world["billing"].pk in shown and world["nobody"].pk in shown
    assert world["sales"].pk not in shown
    assert page.status_code == 200 and len(shown) == 22


def test_search_finds_by_address_and_phone_written_any_way(client, org, world):
    IdentityFactory(customer=world["billing"], kind="phone", address="+14155550199")
    client.force_login(org["ana"])
    page = client.get(reverse("privacy:customers"), {"q": "(415) 555-0199"})
    assert [c.pk for c in page.context["directory"].customers] == [world["billing"].pk]


def test_the_customer_page_follows_the_visibility_rule_and_is_audited(client, org, world):
    client.force_login(org["ana"])
    assert client.get(reverse("privacy:customer", args=[world["sales"].pk])).status_code == 404
    page = client.get(reverse("privacy:customer", args=[world["billing"].pk]))
    assert page.status_code == 200
    assert f"words of {world['billing'].pk}" in page.content.decode()
    entry = AuditEntry.objects.get(action=AuditAction.CUSTOMER_VIEWED)
    assert entry.actor == org["ana"] and entry.target_id == str(world["billing"].pk)


def test_editing_name_attributes_and_identities_is_audited(client, org, world):
    customer = world["billing"]
    customer.attributes = {"plan": "gold", "old": 1}
    customer.save()
    client.force_login(org["ana"])
    client.post(
        reverse("privacy:customer_edit", args=[customer.pk]),
        {"name": "Dee N.", "attributes": '{"plan": "silver"}'},
    )
    customer.refresh_from_db()
    assert customer.name == "Dee N." and customer.attributes == {"plan": "silver"}
    bad = client.post(
        reverse("privacy:customer_edit", args=[customer.pk]),
        {"name": "X", "attributes": "[1, 2"},
        follow=True,
    )
    assert "Not valid JSON" in bad.content.decode()
    customer.refresh_from_db()
    assert customer.name == "Dee N."
    client.post(
        reverse("privacy:identity_add", args=[customer.pk]), {"kind": "phone", "address": "+34 600 000 111"}
    )
    phone = Identity.objects.get(customer=customer, kind="phone")
    assert phone.address == "+34600000111"
    client.post(reverse("privacy:identity_remove", args=[customer.pk, phone.pk]))
    assert not Identity.objects.filter(pk=phone.pk).exists()
    actions = list(
        AuditEntry.objects.filter(target_id=str(customer.pk), actor=org["ana"])
        .exclude(action=AuditAction.CUSTOMER_VIEWED)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [AuditAction.CUSTOMER_UPDATED, AuditAction.IDENTITY_ADDED, AuditAction.IDENTITY_REMOVED]
    added = AuditEntry.objects.get(action=AuditAction.IDENTITY_ADDED)
    assert added.details == {"identity_id": phone.pk, "kind": "phone"}  # no address in the log


def test_merge_from_the_page_then_a_supervisor_undoes_it(client, org, world):
    survivor, merged = world["billing"], world["nobody"]
    IdentityFactory(customer=merged, address="nobody@example.com")
    client.force_login(org["ana"])
    preview = client.get(reverse("privacy:customer_merge", args=[survivor.pk]), {"other": merged.pk})
    assert preview.status_code == 200 and "nobody@example.com" in preview.content.decode()
    client.post(reverse("privacy:customer_merge", args=[survivor.pk]), {"other": merged.pk})
    assert not Customer.objects.filter(pk=merged.pk).exists()
    merge = CustomerMerge.objects.get()
    assert AuditEntry.objects.get(action=AuditAction.CUSTOMER_MERGED).actor == org["ana"]
    # Agents cannot undo; supervisors can.
    assert client.post(reverse("privacy:customer_unmerge", args=[merge.pk])).status_code == 403
    client.force_login(org["boss"])
    response = client.post(reverse("privacy:customer_unmerge", args=[merge.pk]))
    assert response.status_code == 302
    assert Identity.objects.get(address="nobody@example.com").customer_id == merged.pk
    assert AuditEntry.objects.get(action=AuditAction.CUSTOMER_UNMERGED).actor == org["boss"]


def test_export_erase_and_legal_hold_are_for_their_roles(client, org, world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    customer = world["billing"]
    client.force_login(org["ana"])
    assert client.get(reverse("privacy:customer_export", args=[customer.pk])).status_code == 403
    assert (
        client.post(reverse("privacy:customer_erase", args=[customer.pk]), {"confirm": "ERASE"}).status_code
        == 403
    )
    client.force_login(org["boss"])
    export = client.get(reverse("privacy:customer_export", args=[customer.pk]))
    assert export.status_code == 200 and export["Content-Type"] == "application/zip"
    admin = UserFactory(username="root", role=roles.ADMINS)
    client.force_login(admin)
    client.post(
        reverse("privacy:customer_legal_hold", args=[customer.pk]), {"hold": "on", "reason": "Claim 12"}
    )
    refused = client.post(
        reverse("privacy:customer_erase", args=[customer.pk]), {"confirm": "ERASE"}, follow=True
    )
    assert "Claim 12" in refused.content.decode()
    client.post(reverse("privacy:customer_legal_hold", args=[customer.pk]), {"reason": ""})
    client.post(reverse("privacy:customer_erase", args=[customer.pk]), {"confirm": "ERASE"})
    customer.refresh_from_db()
    assert customer.erased_at is not None
    assert Message.objects.filter(thread__customer=customer).exclude(body="").count() == 0
