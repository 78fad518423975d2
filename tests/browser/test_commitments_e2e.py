"""Commitments end to end in Chromium: mark a message, see it pinned, fulfil one, and meet
the open ones first in an incoming call's screen pop."""

import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from commitments.models import Commitment, CommitmentStatus
from conversations import realtime
from conversations.calls import CALL_INCOMING, screen_pop_payload
from conversations.models import Case, Message
from tests.browser.conftest import login, off_loop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

_ROOT = Path(__file__).resolve().parents[2]
DOCS = _ROOT / ("docs" if os.environ.get("HELPDESK_UPDATE_SCREENSHOTS") else "test-results")
DOCS.mkdir(exist_ok=True)


def _ring(case: Case) -> None:
    """Ana phones: the call message the voice webhook stores, and its screen pop."""
    call = Message.objects.create(
        thread=case.thread,
        case=case,
        direction="in",
        kind="call",
        author="customer",
        body="",
        meta={"call_status": "ringing", "call_sid": "CAdemo", "from": "+14155550123"},
        created_at=timezone.now(),
    )
    realtime.publish(CALL_INCOMING, screen_pop_payload(call), case_id=case.pk)


def test_agent_marks_a_message_sees_it_pinned_fulfils_one_and_gets_them_first_on_a_call(
    asgi_server, browser_contexts
):
    off_loop(call_command, "seed_demo", "--customers", "20", "--days", "3", stdout=io.StringIO())
    ana_case = Case.objects.exclude(status="resolved").get(thread__customer__name="Ana Silva")
    page = browser_contexts().new_page()
    login(page, asgi_server, "agent1", "agent1-demo-pass")
    page.goto(f"{asgi_server}/inbox/case/{ana_case.pk}/")
    page.wait_for_selector("body[data-commitments-live='1']")

    pinned = page.locator("#commitments-case")
    # What was promised on Facebook is pinned on her WhatsApp case, past due.
    expect(pinned).to_contain_text("Replacement jar for order #4411")
    expect(pinned).to_contain_text("Past due")
    expect(page.locator("#commitments-sidebar")).to_contain_text("Replacement jar for order #4411")

    # Mark the customer's own message: the text comes prefilled, the agent rewrites it.
    bubble = page.locator("#timeline li.msg", has_text="The replacement jar never came")
    bubble.get_by_role("button", name="Mark as commitment").click()
    dialog = page.locator("#commitment-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("What was promised")).to_have_value(
        "The replacement jar never came. You promised 5 days on Facebook!"
    )
    # Bad input first: a past date is refused in words, and what was typed stays.
    dialog.get_by_label("What was promised").fill("Second jar by express courier, free of charge")
    dialog.get_by_label("Due on (optional)").fill((timezone.localdate() - timedelta(days=2)).isoformat())
    dialog.get_by_role("button", name="Save commitment").click()
    expect(dialog.locator("#commitment-error")).to_contain_text("past")
    expect(dialog.get_by_label("What was promised")).to_have_value(
        "Second jar by express courier, free of charge"
    )
    due = timezone.localdate() + timedelta(days=2)
    dialog.get_by_label("Due on (optional)").fill(due.isoformat())
    dialog.get_by_role("button", name="Save commitment").click()
    expect(dialog).to_be_hidden()
    expect(pinned).to_contain_text("Second jar by express courier")
    expect(page.locator("#commitments-sidebar")).to_contain_text("Second jar by express courier")
    expect(page.locator("#timeline")).to_contain_text("Commitment recorded by Alex")
    marked = Commitment.objects.get(text__startswith="Second jar")
    assert marked.due_on == due and marked.case_id == ana_case.pk and marked.created_by.username == "agent1"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(DOCS / "commitments.png"))

    # Fulfil the old promise: it leaves the box and the thread says so.
    old = pinned.locator(".commitment", has_text="Replacement jar for order #4411")
    old.get_by_role("button", name="Fulfilled").click()
    expect(pinned).not_to_contain_text("Replacement jar for order #4411")
    expect(page.locator("#timeline")).to_contain_text("Commitment fulfilled by Alex")
    assert Commitment.objects.get(text__startswith="Replacement jar").status == CommitmentStatus.FULFILLED

    # She phones: the open promise is the first thing on screen, before the call's own notice.
    off_loop(_ring, ana_case)
    pop = page.locator("#notices .commitments-pop")
    expect(pop).to_contain_text("Second jar by express courier")
    expect(page.locator("#notices .call-pop")).to_be_visible()
    first = page.locator("#notices > .notice").first
    expect(first).to_have_class("notice commitments-pop")
