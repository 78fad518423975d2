"""Issue 18, KPI truth: only what reached the customer is a response, live and rolled up alike.

Real flows through the core (receive_inbound, send_reply, message_deliver
against a local provider, status callbacks), on PostgreSQL; the expected
figures are worked out by hand in each test.
"""

from datetime import date, timedelta

import pytest

from channels_adapters.base import Sender
from conversations.calls import call_log
from conversations.cases import assign_case, set_case_status
from conversations.delivery import message_deliver, message_retry
from conversations.models import Case, CaseStatus, DeliveryStatus
from conversations.services import receive_inbound, record_echo, send_automatic, send_reply
from conversations.signals import case_changed
from conversations.statuses import message_status_update
from customers.services import merge_customers
from kpis.selectors import kpi_report
from kpis.services import kpi_rollup_days
from tests.factories import ChannelFactory, UserFactory
from tests.kpis.factories import at
from tests.provider_server import Reply

pytestmark = pytest.mark.django_db

T0 = at("2026-03-02T09:00")
ANA = Sender("email", "ana@example.com", "Ana")
BOB = Sender("email", "bob@example.com", "Bob")
LATER = at("2026-03-10T12:00")  # when the reports and rollups are run
START, END = date(2026, 3, 2), date(2026, 3, 6)


@pytest.fixture
def channel(provider):
    return ChannelFactory(
        name="Web API", credentials={"secret": "api-secret", "callback_url": provider.url + "/callback"}
    )


@pytest.fixture
def agent():
    return UserFactory(username="zoe", first_name="Zoe")


@pytest.fixture
def announced():
    """What case_announce told the inbox (case_changed is sent with each case.updated push)."""
    seen = []

    def listen(sender, case, change, **kwargs):
        seen.append((change, case.waiting_since))

    case_changed.connect(listen, dispatch_uid="test_kpi_truth")
    yield seen
    case_changed.disconnect(dispatch_uid="test_kpi_truth")


@pytest.fixture
def now_later(time_machine):
    time_machine.move_to(LATER, tick=False)
    return LATER


def _at(time_machine, when):
    time_machine.move_to(when, tick=False)


def _inbound(channel, ext, sender=ANA, text="Where is my parcel?"):
    return receive_inbound(channel=channel, sender=sender, external_id=ext, text=text).message.case


def _reply(case, agent, body="On its way"):
    return send_reply(case=case, author_user=agent, body=body)


def _case(case):
    return Case.objects.get(pk=case.pk)


def _totals(start=START, end=END):
    return kpi_report(start=start, end=end, now=LATER, use_rollups=False)["totals"]


def _rollups_agree(start=START, end=END):
    """The hourly task's rewrite, then the report from rollups equals the live one."""
    kpi_rollup_days(start=start, end=end, now=LATER)
    rolled = kpi_report(start=start, end=end, now=LATER)
    assert rolled == kpi_report(start=start, end=end, now=LATER, use_rollups=False)
    return rolled["totals"]


def test_a_failed_reply_is_no_response_the_later_successful_one_is(
    channel, agent, provider, time_machine, django_capture_on_commit_callbacks
):
    _at(time_machine, T0)
    case = _inbound(channel, "m1")
    _at(time_machine, T0 + timedelta(minutes=5))
    provider.script(Reply(400, {"error": "unknown recipient"}))
    failed = _reply(case, agent, "First try")
    assert message_deliver(message_id=failed.pk).outcome == "failed"
    case = _case(case)
    assert case.first_response_at is None and case.waiting_since == T0  # still waiting, from its time
    assert _totals()["tme_seconds"] is None

    _at(time_machine, T0 + timedelta(minutes=20))
    provider.script(Reply(200, {"id": "p-2"}))
    good = _reply(case, agent, "Second try")
    _at(time_machine, T0 + timedelta(minutes=21))  # the worker sends it a minute later
    with django_capture_on_commit_callbacks(execute=True):
        assert message_deliver(message_id=good.pk).outcome == "sent"
    case = _case(case)
    assert case.first_response_at == T0 + timedelta(minutes=21)
    assert case.waiting_since is None and case.last_wait_started_at == T0
    _at(time_machine, T0 + timedelta(minutes=30))
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)
    totals = _rollups_agree()
    assert totals["tme_seconds"] == 21 * 60  # the sent time, not the queueing (20) nor the failed (5)
    assert totals["tma_seconds"] == 9 * 60
    assert totals["fcr"] == 1.0  # the failed reply is not a second agent message
    assert totals["abandonment_rate"] == 0.0


def test_a_reply_that_fails_after_sent_puts_the_case_back_waiting_from_its_original_time(
    channel, agent, provider, time_machine, django_capture_on_commit_callbacks, announced
):
    _at(time_machine, T0)
    case = _inbound(channel, "m1")
    _at(time_machine, T0 + timedelta(minutes=5))
    provider.script(Reply(200, {"id": "sms-1"}))
    reply = _reply(case, agent)
    with django_capture_on_commit_callbacks(execute=True):
        message_deliver(message_id=reply.pk)
    assert announced == []  # the message.updated push refreshes the row; no panel re-render
    assert _case(case).first_response_at == T0 + timedelta(minutes=5)

    # The carrier reports it undelivered for good (SMS, e-mail bounce): it never was an answer.
    _at(time_machine, T0 + timedelta(minutes=40))
    with django_capture_on_commit_callbacks(execute=True):
        assert message_status_update(channel=channel, external_id="sms-1", status=DeliveryStatus.FAILED)
    case = _case(case)
    assert case.first_response_at is None
    assert case.waiting_since == T0  # the original wait, not the failure's time
    assert announced[-1] == ("waiting", T0)  # the inbox shows it waiting again
    totals = _rollups_agree()
    assert totals["tme_seconds"] is None
    assert totals["sla_compliance"] is None

    # Resolved unanswered, it is abandoned.
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)
    totals = _rollups_agree()
    assert totals["abandonment_rate"] == 1.0 and totals["fcr"] is None


def test_a_failure_does_not_undo_another_reply_that_reached_the_customer(
    channel, agent, provider, time_machine
):
    _at(time_machine, T0)
    case = _inbound(channel, "m1")
    _at(time_machine, T0 + timedelta(minutes=5))
    provider.script(Reply(200, {"id": "a"}))
    first = _reply(case, agent, "A")
    message_deliver(message_id=first.pk)
    _at(time_machine, T0 + timedelta(minutes=8))
    provider.script(Reply(200, {"id": "b"}))
    second = _reply(case, agent, "B")
    message_deliver(message_id=second.pk)
    message_status_update(channel=channel, external_id="a", status=DeliveryStatus.FAILED)
    case = _case(case)
    assert case.first_response_at == T0 + timedelta(minutes=8)  # falls back to the next real one
    assert case.waiting_since is None  # B answered this wait


def test_a_retry_given_up_then_retried_by_the_agent_counts_at_its_successful_send(
    channel, agent, provider, settings, time_machine
):
    settings.HELPDESK = {**settings.HELPDESK, "OUTBOUND_MAX_ATTEMPTS": 2}
    _at(time_machine, T0)
    case = _inbound(channel, "m1")
    _at(time_machine, T0 + timedelta(minutes=2))
    provider.script(Reply(503))
    reply = _reply(case, agent)
    assert message_deliver(message_id=reply.pk).outcome == "retry"
    _at(time_machine, T0 + timedelta(minutes=4))
    assert message_deliver(message_id=reply.pk).outcome == "failed"  # given up
    case = _case(case)
    assert case.first_response_at is None and case.waiting_since == T0

    _at(time_machine, T0 + timedelta(minutes=30))
    message_retry(message=reply, by=agent)
    provider.script(Reply(200, {"id": "ok"}))
    assert message_deliver(message_id=reply.pk).outcome == "sent"
    case = _case(case)
    assert case.first_response_at == T0 + timedelta(minutes=30) and case.waiting_since is None
    assert _rollups_agree()["tme_seconds"] == 30 * 60


def test_a_status_callback_settles_a_queued_reply_as_the_response(channel, agent, time_machine):
    _at(time_machine, T0)
    case = _inbound(channel, "m1")
    _at(time_machine, T0 + timedelta(minutes=3))
    reply = _reply(case, agent)
    # The provider's "delivered" reaches us first (our id in the callback): that is the response.
    message_status_update(
        channel=channel,
        external_id="p-9",
        status=DeliveryStatus.DELIVERED,
        at=T0 + timedelta(minutes=4),
        message_id=reply.pk,
    )
    assert _case(case).first_response_at == T0 + timedelta(minutes=4)


def test_an_echo_and_an_answered_call_are_responses_a_bot_message_never(
    channel, agent, provider, time_machine
):
    _at(time_machine, T0)
    case = _inbound(channel, "m1")
    _at(time_machine, T0 + timedelta(minutes=1))
    provider.script(Reply(200, {"id": "bot-1"}))
    bot = send_automatic(case=case, body="Thanks, an agent will answer soon.")
    assert message_deliver(message_id=bot.pk).outcome == "sent"
    case = _case(case)
    assert case.first_response_at is None and case.waiting_since == T0  # sent, but a bot's

    # Answered from the provider's own app: the echo is already sent, so it is a response.
    _at(time_machine, T0 + timedelta(minutes=6))
    record_echo(channel=channel, recipient=ANA, external_id="echo-1", text="Answered from my phone")
    case = _case(case)
    assert case.first_response_at == T0 + timedelta(minutes=6) and case.waiting_since is None

    # An answered call on another customer's case is a response too.
    _at(time_machine, T0 + timedelta(minutes=10))
    other = _inbound(channel, "b1", sender=BOB)
    _at(time_machine, T0 + timedelta(minutes=13))
    call_log(by=agent, direction="outbound", number="+34600000001", talk_seconds=90, case=other)
    other = _case(other)
    assert other.first_response_at == T0 + timedelta(minutes=13) and other.waiting_since is None
    for c in (case, other):
        set_case_status(case=c, status=CaseStatus.RESOLVED, by=agent)
    totals = _rollups_agree()
    assert totals["tme_seconds"] == (6 * 60 + 3 * 60) / 2
    assert totals["fcr"] == 1.0  # one agent message each: the bot's line does not count


def test_rollups_equal_live_after_a_reopen_a_reassignment_and_a_merge(
    channel, agent, provider, time_machine, django_capture_on_commit_callbacks
):
    other_agent = UserFactory(username="yan")
    provider.script(Reply(200, {}))
    # Day 1: Ana's case, answered and resolved.
    _at(time_machine, T0)
    ana_case = _inbound(channel, "a1")
    assign_case(case=ana_case, assignee=agent)
    _at(time_machine, T0 + timedelta(minutes=10))
    message_deliver(message_id=_reply(ana_case, agent).pk)
    _at(time_machine, T0 + timedelta(hours=1))
    set_case_status(case=ana_case, status=CaseStatus.RESOLVED, by=agent)
    # Day 2: Bob writes (another customer record), the agent's reply fails.
    _at(time_machine, T0 + timedelta(days=1))
    bob_case = _inbound(channel, "b1", sender=BOB)
    assign_case(case=bob_case, assignee=agent)
    provider.script(Reply(400))
    message_deliver(message_id=_reply(bob_case, agent).pk)
    provider.script(Reply(200, {}))
    first = _rollups_agree()
    assert first["volume"] == 2 and first["tme_seconds"] == 600 and first["fcr"] == 1.0

    # Day 3: Ana writes again within the reopen window: the same case, reopened.
    _at(time_machine, T0 + timedelta(days=2))
    assert _inbound(channel, "a2", text="It did not arrive").pk == ana_case.pk
    _at(time_machine, T0 + timedelta(days=2, minutes=5))
    message_deliver(message_id=_reply(ana_case, agent, "Sent again").pk)
    set_case_status(case=ana_case, status=CaseStatus.RESOLVED, by=agent)
    reopened = _rollups_agree()
    assert reopened["fcr"] == 0.0  # reopened, two agent messages
    assert reopened["tme_seconds"] == 600  # a reopened case keeps its first response

    # Bob's case moves to another agent: it belongs to its current assignee, live and rolled up.
    assign_case(case=bob_case, assignee=other_agent)
    report = kpi_report(start=START, end=END, now=LATER, use_rollups=False)
    assert str(other_agent.pk) in report["by_agent"]
    _rollups_agree()

    # Bob turns out to be Ana: his customer is merged into hers; his case stays (Ana's is resolved).
    with django_capture_on_commit_callbacks(execute=True):
        merge_customers(survivor=ana_case.thread.customer, merged=bob_case.thread.customer)
    merged = _rollups_agree()
    assert merged["volume"] == 2
    bob_case = _case(bob_case)
    assert bob_case.first_response_at is None and bob_case.waiting_since == T0 + timedelta(days=1)


def test_deleting_an_agent_or_a_team_keeps_their_cases_in_the_rolled_up_totals(now_later):
    from tests.factories import TeamFactory
    from tests.kpis.factories import build_case

    email = ChannelFactory(kind="email", name="Email")
    leaver, team = UserFactory(username="leaver"), TeamFactory(name="Night shift")
    build_case(
        channel=email, agent=leaver, team=team, opened="2026-03-02T09:00", replies=("2026-03-02T09:10",)
    )
    build_case(channel=email, opened="2026-03-02T10:00", replies=("2026-03-02T10:20",))
    before = _rollups_agree()
    assert before["volume"] == 2 and before["tme_seconds"] == 900
    leaver.delete()  # the case stays, unassigned (Case.assignee is SET_NULL)
    team.delete()
    rolled = kpi_report(start=START, end=END, now=LATER)
    assert rolled == kpi_report(start=START, end=END, now=LATER, use_rollups=False)
    assert rolled["totals"] == before and rolled["by_agent"] == {} and rolled["by_team"] == {}


def test_a_merge_keeps_the_merged_customers_answers_and_its_folded_case_agrees(
    now_later, django_capture_on_commit_callbacks
):
    from tests.kpis.factories import SurveyAnswerFactory, build_case

    email = ChannelFactory(kind="email", name="Email")
    old = build_case(
        channel=email, opened="2026-03-02T08:00", replies=("2026-03-02T08:05",), resolved="2026-03-02T09:00"
    )
    SurveyAnswerFactory(case=old, kind="csat", score=5, answered_at=at("2026-03-02T12:00"))
    gone = build_case(channel=email, opened="2026-03-03T09:00")  # Bob's, unanswered
    kept = build_case(channel=email, opened="2026-03-04T09:00", replies=("2026-03-04T09:30",))  # Ana's
    Case.objects.filter(pk=old.pk).update(thread=gone.thread)  # Bob's earlier, rated case
    before = _rollups_agree()
    assert before["volume"] == 3 and before["csat"] == 1.0
    with django_capture_on_commit_callbacks(execute=True):
        merge_customers(survivor=kept.thread.customer, merged=gone.thread.customer)
    assert not Case.objects.filter(pk=gone.pk).exists()  # folded into Ana's case
    rolled = kpi_report(start=START, end=END, now=LATER)
    assert rolled == kpi_report(start=START, end=END, now=LATER, use_rollups=False)  # before the rewrite
    assert rolled["totals"]["csat"] == 1.0  # Bob's answer survived the merge
    after = _rollups_agree()
    assert after["volume"] == 2  # one customer, one case in progress: opened at Bob's time
    # Bob's old case (5 min) and the folded one: opened Mar 3 09:00, answered Mar 4 09:30.
    assert after["tme_seconds"] == (5 * 60 + 24 * 3600 + 30 * 60) / 2


def test_a_reassignment_shows_in_rolled_up_days_at_once(now_later, django_capture_on_commit_callbacks):
    from tests.kpis.factories import build_case

    first, second = UserFactory(username="first"), UserFactory(username="second")
    email = ChannelFactory(kind="email", name="Email")
    case = build_case(
        channel=email,
        agent=first,
        opened="2026-03-02T09:00",
        replies=("2026-03-02T09:10",),
        resolved="2026-03-03T09:00",
    )
    _rollups_agree()
    with django_capture_on_commit_callbacks(execute=True):
        assign_case(case=case, assignee=second)
    rolled = kpi_report(start=START, end=END, now=LATER)  # no rewrite in between
    assert rolled == kpi_report(start=START, end=END, now=LATER, use_rollups=False)
    assert list(rolled["by_agent"]) == [str(second.pk)]


def test_a_reply_sent_just_after_the_resolution_has_no_negative_handle_time(channel, agent, time_machine):
    from tests.factories import provider_accepts

    _at(time_machine, T0)
    case = _inbound(channel, "m1")
    _at(time_machine, T0 + timedelta(minutes=5))
    reply = _reply(case, agent, "Done, closing this.")
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)  # reply and resolve at once
    _at(time_machine, T0 + timedelta(minutes=5, seconds=1))
    provider_accepts(reply)  # the worker sends it after the resolution
    case = _case(case)
    assert case.first_response_at == T0 + timedelta(minutes=5, seconds=1) and case.waiting_since is None
    totals = _rollups_agree()
    assert totals["tme_seconds"] == 301 and totals["tma_seconds"] == 0 and totals["fcr"] == 1.0
