"""Issue 16's flow on the demo data: the shop's backend, with its own API token, records
what it knows about the customer who wrote from the order page and leaves the agents a note."""

import io

import pytest
from django.core.management import call_command
from django.test import Client

from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


def _token_from_the_settings_page(username: str) -> str:
    from django.contrib.auth import get_user_model

    browser = Client()
    browser.force_login(get_user_model().objects.get(username=username))
    page = browser.post("/account/tokens/", {"name": "Shop backend"}).content.decode()
    return page.split('<code id="new-token">')[1].split("</code>")[0]


def test_shop_backend_adds_an_attribute_and_a_note_then_hears_case_resolved_by_webhook(
    settings, tmp_path, provider
):
    from standardwebhooks import Webhook

    from integrations.delivery import webhook_deliver
    from integrations.models import WebhookDelivery
    from integrations.services import subscription_create

    settings.MEDIA_ROOT = str(tmp_path)
    call_command("seed_demo", stdout=io.StringIO())
    shop = ApiClient(_token_from_the_settings_page("admin"))
    # The shop's backend listens for resolutions (an admin subscribed it in Django admin).
    hook = subscription_create(url=provider.url + "/shop/helpdesk-events", events=["case.resolved"])

    # Dee wrote from the shop's order page (the seed's API-channel message); find her.
    found = shop.get("/api/v1/customers/", {"q": "dee@example.com"}).json()["results"]
    assert [c["name"] for c in found] == ["Dee Novak"]
    dee = found[0]["id"]

    changed = shop.patch(
        f"/api/v1/customers/{dee}/", {"attributes": {"last_order": 771, "order_status": "packed"}}
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["attributes"]["last_order"] == 771

    cases = shop.get("/api/v1/cases/", {"customer": dee, "status": "open"}).json()["results"]
    assert len(cases) == 1 and cases[0]["origin_channel"]["kind"] == "api"
    case = cases[0]["id"]
    note = shop.post(
        f"/api/v1/cases/{case}/notes/", {"body": "Shop: order 771 not shipped yet, address can change."}
    )
    assert note.status_code == 201 and note.json()["kind"] == "note"

    resolved = shop.patch(f"/api/v1/cases/{case}/", {"status": "resolved"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"

    # The resolution reaches the shop's receiver, signed per Standard Webhooks.
    [delivery] = WebhookDelivery.objects.filter(subscription=hook)
    assert webhook_deliver(delivery_id=delivery.pk).outcome == "delivered"
    [request] = provider.requests
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    event = Webhook(hook.secret).verify(request.body, headers)
    assert event["type"] == "case.resolved"
    assert event["data"]["case"]["id"] == case and event["data"]["case"]["customer_id"] == dee

    # What the agents see: the note on Dee's timeline, the attribute on her record.
    timeline = shop.get(f"/api/v1/customers/{dee}/timeline/").json()["results"]
    kinds = [(m["kind"], m["body"][:5]) for m in timeline[:3]]
    assert ("note", "Shop:") in kinds and timeline[0]["kind"] == "system"  # "Case resolved by …"
    agent = Client()
    from django.contrib.auth import get_user_model

    agent.force_login(get_user_model().objects.get(username="agent1"))
    page = agent.get(f"/inbox/case/{case}/").content.decode()
    assert "order 771 not shipped yet" in page
    assert shop.get(f"/api/v1/customers/{dee}/").json()["attributes"]["order_status"] == "packed"
