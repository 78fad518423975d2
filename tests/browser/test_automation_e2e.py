"""In Chromium: bulk-select cases in the inbox list and label them; apply a macro on a case page."""

import pytest
from playwright.sync_api import expect

from automation.models import AgentPresence, Macro
from conversations.models import Case, CaseStatus, Label
from tests.browser.conftest import login, off_loop
from tests.conftest import wait_for
from tests.factories import CaseFactory, CustomerFactory, MessageFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _world():
    team = TeamFactory(name="Billing")
    agent = UserFactory(username="bulky", first_name="Bulky")
    team.members.add(agent)
    Label.objects.create(name="refund")
    cases = []
    for name in ("Ana Bulk", "Bo Bulk", "Cy Bulk"):
        case = CaseFactory(thread=CustomerFactory(name=name).thread, team=team)
        MessageFactory(case=case, body=f"Hello from {name}")
        cases.append(case)
    Macro.objects.create(
        name="Close as refund", actions=[{"type": "add_label", "label": "refund"}, {"type": "resolve"}]
    )
    return agent, cases


def test_bulk_label_then_macro(asgi_server, browser_contexts):
    agent, (ana, bo, cy) = off_loop(_world)
    page = browser_contexts().new_page()
    login(page, asgi_server, "bulky", "pass-word-123")
    # The socket said hello: the agent is online for the assigner.
    wait_for(lambda: AgentPresence.objects.filter(user=agent, connections__gte=1).exists())

    bar = page.locator("[data-bulk]")
    expect(bar).to_be_hidden()
    page.locator(f'.case-row[data-case="{ana.pk}"] .bulk-pick').check()
    page.locator(f'.case-row[data-case="{bo.pk}"] .bulk-pick').check()
    expect(bar).to_be_visible()
    expect(bar.locator("[data-bulk-count]")).to_have_text("2 cases selected")
    bar.get_by_label("Action").select_option("add_label:refund")
    bar.get_by_role("button", name="Apply to selected").click()
    expect(bar.locator("[data-bulk-confirm]")).to_have_text("Apply to 2 cases? This cannot be undone.")
    assert not Case.labels.through.objects.exists()  # nothing before the confirmation
    bar.get_by_role("button", name="Apply to selected").click()
    expect(bar.locator("[data-bulk-done]")).to_have_text("Done: 2 cases updated.")
    labelled = set(Case.labels.through.objects.values_list("case_id", flat=True))
    assert labelled == {ana.pk, bo.pk}

    page.goto(f"{asgi_server}/inbox/case/{cy.pk}/")
    page.get_by_role("button", name="Close as refund").click()
    expect(page.locator(".macro-result")).to_contain_text("label refund added")
    expect(page.locator("#timeline")).to_contain_text("Macro 'Close as refund' by Bulky")
    cy.refresh_from_db()
    assert cy.status == CaseStatus.RESOLVED and cy.labels.filter(name="refund").exists()

    page.get_by_label("Away (no new cases)").check()
    wait_for(lambda: AgentPresence.objects.get(user=agent).away)
