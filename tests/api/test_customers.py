"""Customers through the API: search, read, create, change, addresses, merges."""

import pytest

from customers.models import Customer, CustomerMerge, Identity
from tests.api.conftest import error_of
from tests.factories import CaseFactory, CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers/"


@pytest.mark.parametrize(
    "q", ["sam@example.com", "SAM@example", "Sam Bill", "+14155550199", "(415) 555-0199", "1 415 555 0199"]
)
def test_search_by_name_email_or_phone_in_any_format(api, world, q):
    results = api["ana"].get(URL, {"q": q}).json()["results"]
    assert [c["id"] for c in results] == [world["sam"].pk]


def test_list_is_newest_first_and_cursor_paginated(api, world):
    extra = [CustomerFactory(name=f"Walk-in {n}") for n in range(3)]
    first = api["boss"].get(URL, {"page_size": 2}).json()
    assert [c["id"] for c in first["results"]] == [extra[2].pk, extra[1].pk]
    second = api["boss"].get(first["next"]).json()
    assert [c["id"] for c in second["results"]] == [extra[0].pk, world["sol"].pk]
    third = api["boss"].get(second["next"]).json()
    assert [c["id"] for c in third["results"]] == [world["sam"].pk] and third["next"] is None


def test_retrieve_has_the_identities(api, world):
    body = api["ana"].get(f"{URL}{world['sam'].pk}/").json()
    assert body["name"] == "Sam Billing"
    assert {(i["kind"], i["address"]) for i in body["identities"]} == {
        ("email", "sam@example.com"),
        ("phone", "+14155550199"),
    }


def test_create_normalizes_addresses_like_ingestion(api, org):
    response = api["ana"].post(
        URL,
        {
            "name": "Dee Novak",
            "attributes": {"plan": "gold"},
            "identities": [
                {"kind": "email", "address": " Dee@Example.COM "},
                {"kind": "phone", "address": "(415) 555-0100"},
            ],
        },
    )
    assert response.status_code == 201, response.content
    dee = Customer.objects.get(pk=response.json()["id"])
    assert dee.thread is not None and dee.attributes == {"plan": "gold"}
    assert set(dee.identities.values_list("kind", "address")) == {
        ("email", "dee@example.com"),
        ("phone", "+14155550100"),
    }


def test_create_with_someone_elses_address_is_refused_and_writes_nothing(api, world):
    before = Customer.objects.count()
    response = api["boss"].post(
        URL, {"name": "Dup", "identities": [{"kind": "email", "address": "sam@example.com"}]}
    )
    assert response.status_code == 400
    assert "merge the two customers" in error_of(response)["message"]
    assert Customer.objects.count() == before


def test_patch_merges_attributes_and_renames(api, world):
    sam = world["sam"]
    sam.attributes = {"plan": "silver", "vip": True}
    sam.save()
    response = api["ana"].patch(
        f"{URL}{sam.pk}/", {"name": "Sam B.", "attributes": {"plan": "gold", "vip": None}}
    )
    assert response.status_code == 200
    sam.refresh_from_db()
    assert sam.name == "Sam B." and sam.attributes == {"plan": "gold"}
    assert response.json()["attributes"] == {"plan": "gold"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x" * 201}, "name"),
        ({"attributes": ["not", "an", "object"]}, "attributes"),
        ({"attributes": {"k": "nul\u0000byte"}}, None),
        ({"name": "nul\u0000"}, None),
    ],
)
def test_bad_patch_is_400_in_the_error_shape(api, world, body, field):
    response = api["ana"].patch(f"{URL}{world['sam'].pk}/", body)
    assert response.status_code == 400
    error = error_of(response)
    if field:
        assert error["code"] == "invalid" and field in error["fields"]


def test_add_and_remove_an_identity(api, world):
    sam = world["sam"]
    added = api["ana"].post(
        f"{URL}{sam.pk}/identities/", {"kind": "phone", "address": "whatsapp:+34 612 345 678"}
    )
    assert added.status_code == 201 and added.json()["address"] == "+34612345678"
    identity = Identity.objects.get(pk=added.json()["id"])
    assert api["ana"].delete(f"{URL}{sam.pk}/identities/{identity.pk}/").status_code == 204
    assert not Identity.objects.filter(pk=identity.pk).exists()


def test_bad_identity_is_400(api, world):
    response = api["ana"].post(
        f"{URL}{world['sam'].pk}/identities/", {"kind": "phone", "address": "not a phone"}
    )
    assert response.status_code == 400 and "not a phone number" in error_of(response)["message"]
    response = api["ana"].post(f"{URL}{world['sam'].pk}/identities/", {"kind": "pigeon", "address": "x"})
    assert response.status_code == 400 and "kind" in error_of(response)["fields"]


def test_last_address_of_a_customer_with_messages_stays(api, world):
    sol = world["sol"]
    only = sol.identities.get()
    response = api["bo"].delete(f"{URL}{sol.pk}/identities/{only.pk}/")
    assert response.status_code == 400 and "only address" in error_of(response)["message"]


def test_identity_of_another_customer_is_404(api, world):
    other = world["sol"].identities.get()
    assert api["boss"].delete(f"{URL}{world['sam'].pk}/identities/{other.pk}/").status_code == 404


def test_merge_is_audited(api, world, org):
    twin = CustomerFactory(name="")
    IdentityFactory(customer=twin, kind="phone", address="+14155550111")
    response = api["ana"].post(f"{URL}{world['sam'].pk}/merge/", {"other": twin.pk})
    assert response.status_code == 200, response.content
    record = CustomerMerge.objects.get()
    assert record.survivor_id == world["sam"].pk and record.merged_customer_id == twin.pk
    assert record.merged_by == org["ana"]
    assert response.json()["merged_customer_id"] == twin.pk
    assert {i["address"] for i in response.json()["survivor"]["identities"]} >= {"+14155550111"}
    assert not Customer.objects.filter(pk=twin.pk).exists()


def test_merge_refused_by_the_service_is_400_and_changes_nothing(api, world, org):
    """Sol has a case in progress with Sales: merging it into Sam's Billing case is refused."""
    response = api["boss"].post(f"{URL}{world['sam'].pk}/merge/", {"other": world["sol"].pk})
    assert response.status_code == 400
    assert "Nothing was changed" in error_of(response)["message"]
    assert not CustomerMerge.objects.exists() and Customer.objects.filter(pk=world["sol"].pk).exists()


def test_merge_into_self_is_400(api, world):
    response = api["ana"].post(f"{URL}{world['sam'].pk}/merge/", {"other": world["sam"].pk})
    assert response.status_code == 400


def test_timeline_newest_or_oldest_first_with_cursor(api, world, org):
    from tests.factories import MessageFactory

    case = world["billing_case"]
    later = [MessageFactory(case=case, channel=world["channel"], body=f"m{n}") for n in range(3)]
    url = f"{URL}{world['sam'].pk}/timeline/"
    newest = api["ana"].get(url, {"page_size": 2}).json()
    assert [m["id"] for m in newest["results"]] == [later[2].pk, later[1].pk]
    rest = api["ana"].get(newest["next"]).json()
    assert [m["id"] for m in rest["results"]] == [later[0].pk, world["billing_note"].pk]
    oldest = api["ana"].get(url, {"order": "oldest", "page_size": 2}).json()
    assert [m["id"] for m in oldest["results"]] == [world["sam_in"].pk, world["billing_note"].pk]
    assert api["ana"].get(url, {"order": "sideways"}).status_code == 400
    assert api["ana"].get(url, {"cursor": "forged!"}).status_code == 400


def test_timeline_spans_every_case_of_the_customer(api, world, org):
    from tests.factories import MessageFactory

    world["billing_case"].status = "resolved"
    world["billing_case"].save()
    second = CaseFactory(thread=world["sam"].thread, team=org["billing"], origin_channel=world["channel"])
    MessageFactory(case=second, channel=world["channel"], body="Again")
    bodies = [m["body"] for m in api["ana"].get(f"{URL}{world['sam'].pk}/timeline/").json()["results"]]
    assert bodies[0] == "Again" and "Where is my refund?" in bodies


@pytest.mark.parametrize("id_list_max", [1000, 1])
def test_search_gives_the_same_answer_on_both_plans(api, world, monkeypatch, id_list_max):
    """Few matches are read as a list of ids, many by walking the customers: same results."""
    from customers import selectors

    monkeypatch.setattr(selectors, "SEARCH_ID_LIST_MAX", id_list_max)
    IdentityFactory(customer=CustomerFactory(name="Zed"), kind="email", address="zed@example.com")
    found = {c["name"] for c in api["boss"].get(URL, {"q": "example.com"}).json()["results"]}
    assert found == {"Sam Billing", "Sol Sales", "Zed"}
    assert [c["name"] for c in api["boss"].get(URL, {"q": "(415) 555-0199"}).json()["results"]] == [
        "Sam Billing"
    ]
    # The inbox's search (by name): ana sees Sam (Billing) and Zed (no case yet), not Sol (Sales).
    ana = world["billing_case"].team.members.get()
    assert [c.name for c in selectors.customer_search(user=ana, q="example")] == ["Sam Billing", "Zed"]
