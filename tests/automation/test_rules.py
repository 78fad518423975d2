"""The rules engine through the core's real hooks: routing, each action, order, stop, loop guard."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from automation.models import Rule, RuleEvent
from automation.services import rules_idle_run
from conversations.cases import assign_case, set_case_status
from conversations.models import Author, CannedResponse, Case, CaseStatus, Label, Message, MessageKind
from kpis.models import CaseSla, SurveyRequest
from kpis.services import sla_check, survey_answer_record
from tests.automation.factories import RuleFactory, inbound, team_with_agents
from tests.factories import ChannelFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def events(case):
    return list(Message.objects.filter(case=case, kind=MessageKind.SYSTEM).values_list("body", flat=True))


@pytest.fixture
def api():
    return ChannelFactory()


def test_routing_rule_sends_new_case_to_team_then_auto_assigns(api):
    tier2, agents = team_with_agents(2, capacity=3)
    tier2.name = "Tier 2"
    tier2.save()
    RuleFactory(
        name="VIP to Tier 2",
        event=RuleEvent.CASE_OPENED,
        conditions=[{"field": "text", "op": "contains", "value": "urgent"}],
        actions=[{"type": "assign_team", "team": tier2.pk}],
    )
    case = inbound(api, "This is urgent!").message.case
    case.refresh_from_db()
    assert case.team == tier2
    assert case.assignee in agents
    assert "Rule 'VIP to Tier 2': assigned to team Tier 2" in events(case)
    other = inbound(api, "Just a question").message.case
    other.refresh_from_db()
    assert other.team is None and other.assignee is None


def test_routing_by_customer_attribute(api):
    team = TeamFactory(name="VIP desk")
    RuleFactory(
        event=RuleEvent.CASE_OPENED,
        conditions=[{"field": "customer_attribute", "key": "vip", "op": "is", "value": True}],
        actions=[{"type": "assign_team", "team": team.pk}],
    )
    first = inbound(api, "hi", address="vip@example.com").message
    customer = first.thread.customer
    customer.attributes = {"vip": True}
    customer.save()
    set_case_status(case=first.case, status=CaseStatus.RESOLVED)
    Case.objects.filter(pk=first.case_id).update(resolved_at=timezone.now() - timedelta(days=30))
    second = inbound(api, "hello again", address="vip@example.com").message
    assert second.case_id != first.case_id
    assert Case.objects.get(pk=second.case_id).team == team
    assert Case.objects.get(pk=first.case_id).team is None


def test_actions_in_order_labels_priority_note_and_bot_reply(api):
    Label.objects.create(name="refund")
    Label.objects.create(name="old")
    CannedResponse.objects.create(
        shortcut="refund-ack", title="Ack", body="Hi {{customer.first_name}}, we got it."
    )
    RuleFactory(
        event=RuleEvent.MESSAGE_RECEIVED,
        conditions=[{"field": "text", "op": "matches", "value": r"\brefund\b"}],
        actions=[
            {"type": "add_label", "label": "old"},
            {"type": "add_label", "label": "refund"},
            {"type": "remove_label", "label": "old"},
            {"type": "set_priority", "priority": 3},
            {"type": "note", "text": "Check the order first"},
            {"type": "reply", "canned": "refund-ack"},
        ],
    )
    message = inbound(api, "I need a refund").message
    case = Case.objects.get(pk=message.case_id)
    assert set(case.labels.values_list("name", flat=True)) == {"refund"}
    assert case.priority == 3
    assert case.messages.filter(kind=MessageKind.NOTE, body="Check the order first").exists()
    reply = case.messages.get(direction="out", kind=MessageKind.TEXT)
    assert reply.author == Author.BOT and reply.body.endswith("we got it.")
    assert reply.status == "queued"  # the normal outbound path: a row, then a worker's send
    # Not a response: the customer is still waiting, no first response.
    assert case.first_response_at is None and case.waiting_since is not None
    lines = [e for e in events(case) if e.startswith("Rule ")]
    assert [line.split(": ", 1)[1] for line in lines] == [
        "label old added",
        "label refund added",
        "label old removed",
        "priority set to Urgent",
        "added a note",
        "sent the canned reply /refund-ack",
    ]


def test_assign_agent_snooze_resolve(api):
    agent = UserFactory()
    rule = RuleFactory(
        event=RuleEvent.MESSAGE_RECEIVED,
        conditions=[{"field": "text", "op": "contains", "value": "later"}],
        actions=[{"type": "assign_agent", "agent": agent.pk}, {"type": "snooze", "minutes": 30}],
    )
    case = Case.objects.get(pk=inbound(api, "call me later").message.case_id)
    assert case.assignee == agent and case.status == CaseStatus.SNOOZED
    assert case.snoozed_until > timezone.now() + timedelta(minutes=29)
    rule.actions = [{"type": "resolve"}]
    rule.save()
    case = Case.objects.get(pk=inbound(api, "later again", address="x@example.com").message.case_id)
    assert case.status == CaseStatus.RESOLVED


def test_escalate_and_survey(api):
    RuleFactory(
        event=RuleEvent.MESSAGE_RECEIVED,
        conditions=[{"field": "text", "op": "contains", "value": "lawyer"}],
        actions=[{"type": "escalate"}, {"type": "send_survey", "kind": "csat"}],
    )
    case = Case.objects.get(pk=inbound(api, "I will call my lawyer").message.case_id)
    assert any("escalated to the supervisors" in e for e in events(case))
    assert SurveyRequest.objects.filter(case=case, kind="csat").exists()


def test_a_rule_calls_the_webhooks_subscribed_to_it(api):
    from integrations.models import WebhookDelivery, WebhookSubscription

    wanted = WebhookSubscription.objects.create(
        url="http://127.0.0.1:9/a", events=["automation.rule_webhook"]
    )
    WebhookSubscription.objects.create(url="http://127.0.0.1:9/b", events=["case.opened"])
    RuleFactory(
        name="Refunds to the ERP",
        event=RuleEvent.MESSAGE_RECEIVED,
        conditions=[{"field": "text", "op": "contains", "value": "refund"}],
        actions=[{"type": "call_webhook", "tag": "erp-refund"}],
    )
    case = Case.objects.get(pk=inbound(api, "I want a refund").message.case_id)

    [delivery] = WebhookDelivery.objects.filter(event="automation.rule_webhook")
    assert delivery.subscription == wanted and delivery.ordering_key == f"case:{case.pk}"
    data = delivery.payload["data"]
    assert data["source"] == "Rule 'Refunds to the ERP'" and data["tag"] == "erp-refund"
    assert data["case"]["id"] == case.pk and data["case"]["customer_id"] == case.thread.customer_id
    assert "Rule 'Refunds to the ERP': called the webhook" in events(case)
    # Another message that does not match calls nothing more.
    inbound(api, "thanks")
    assert WebhookDelivery.objects.filter(event="automation.rule_webhook").count() == 1


def test_rule_order_and_stop_processing(api):
    Label.objects.create(name="first")
    Label.objects.create(name="second")
    Label.objects.create(name="third")
    RuleFactory(
        name="B",
        position=20,
        event=RuleEvent.MESSAGE_RECEIVED,
        stop_processing=True,
        actions=[{"type": "add_label", "label": "second"}],
    )
    RuleFactory(
        name="A",
        position=10,
        event=RuleEvent.MESSAGE_RECEIVED,
        actions=[{"type": "add_label", "label": "first"}],
    )
    RuleFactory(
        name="C",
        position=30,
        event=RuleEvent.MESSAGE_RECEIVED,
        actions=[{"type": "add_label", "label": "third"}],
    )
    case = Case.objects.get(pk=inbound(api, "hello").message.case_id)
    assert set(case.labels.values_list("name", flat=True)) == {"first", "second"}
    rule_lines = [e for e in events(case) if e.startswith("Rule ")]
    assert rule_lines[0].startswith("Rule 'A'") and rule_lines[1].startswith("Rule 'B'")


def test_loop_guard_one_level_only(api):
    """Two rules on "case assigned" that hand the case to each other: one level, then stop."""
    ana, bo = UserFactory(username="loop-ana"), UserFactory(username="loop-bo")
    RuleFactory(
        name="to bo",
        event=RuleEvent.CASE_ASSIGNED,
        conditions=[{"field": "assignee", "op": "is", "value": ana.pk}],
        actions=[{"type": "assign_agent", "agent": bo.pk}],
    )
    RuleFactory(
        name="to ana",
        event=RuleEvent.CASE_ASSIGNED,
        conditions=[{"field": "assignee", "op": "is", "value": bo.pk}],
        actions=[{"type": "assign_agent", "agent": ana.pk}],
    )
    case = Case.objects.get(pk=inbound(api, "hello").message.case_id)
    assign_case(case=case, assignee=ana)  # the agent's action: level 0
    case.refresh_from_db()
    # "to bo" fired (level 1), its assignment fired "to ana" (level 2 is not run again).
    fired = [e for e in events(case) if e.startswith("Rule ")]
    assert fired == [
        "Rule 'to bo': assigned to " + (bo.get_full_name() or bo.username),
        "Rule 'to ana': assigned to " + (ana.get_full_name() or ana.username),
    ]
    assert case.assignee == ana


def test_status_changed_event(api):
    Label.objects.create(name="done")
    RuleFactory(
        event=RuleEvent.STATUS_CHANGED,
        conditions=[{"field": "status", "op": "is", "value": "resolved"}],
        actions=[{"type": "add_label", "label": "done"}],
    )
    case = Case.objects.get(pk=inbound(api, "hello").message.case_id)
    assert not case.labels.exists()
    set_case_status(case=case, status=CaseStatus.RESOLVED)
    assert case.labels.filter(name="done").exists()


def test_sla_breach_event(api):
    RuleFactory(event=RuleEvent.SLA_BREACHED, actions=[{"type": "set_priority", "priority": 3}])
    case = Case.objects.get(pk=inbound(api, "hello").message.case_id)
    CaseSla.objects.create(case=case, first_response_due=timezone.now() - timedelta(minutes=1))
    assert sla_check()["breached"] >= 1
    case.refresh_from_db()
    assert case.priority == 3


def test_low_csat_answer_event(api):
    team = TeamFactory(name="Recovery")
    RuleFactory(
        event=RuleEvent.SURVEY_ANSWERED,
        conditions=[{"field": "survey_score", "op": "lte", "value": 2}],
        actions=[{"type": "assign_team", "team": team.pk}],
    )
    case = Case.objects.get(pk=inbound(api, "hello").message.case_id)
    now = timezone.now()
    good = SurveyRequest.objects.create(
        kind="csat",
        case=case,
        customer_id=case.thread.customer_id,
        status="sent",
        created_at=now,
        send_after=now,
    )
    survey_answer_record(request=good, score=5, via="link")
    assert Case.objects.get(pk=case.pk).team is None
    bad = SurveyRequest.objects.create(
        kind="csat",
        case=case,
        customer_id=case.thread.customer_id,
        status="sent",
        created_at=now,
        send_after=now,
    )
    survey_answer_record(request=bad, score=1, via="link")
    assert Case.objects.get(pk=case.pk).team == team


def test_idle_rule_once_per_quiet_spell(api):
    Label.objects.create(name="stale")
    rule = RuleFactory(
        event=RuleEvent.CASE_IDLE, idle_minutes=30, actions=[{"type": "note", "text": "Still here?"}]
    )
    case = Case.objects.get(pk=inbound(api, "hello").message.case_id)
    assert rules_idle_run() == 0
    later = timezone.now() + timedelta(minutes=31)
    assert rules_idle_run(now=later) == 1
    assert rules_idle_run(now=later + timedelta(minutes=5)) == 0
    assert case.messages.filter(kind=MessageKind.NOTE, body="Still here?").count() == 1
    assert rule.runs.count() == 1


def test_action_that_cannot_run_is_written_and_the_next_still_runs(api):
    Label.objects.create(name="after")
    channel_off = ChannelFactory()
    CannedResponse.objects.create(shortcut="hi", title="Hi", body="Hello")
    RuleFactory(
        event=RuleEvent.MESSAGE_RECEIVED,
        actions=[{"type": "reply", "canned": "hi"}, {"type": "add_label", "label": "after"}],
    )
    message = inbound(channel_off, "hello").message
    channel_off.is_active = False
    channel_off.save()
    case = Case.objects.get(pk=message.case_id)
    set_case_status(case=case, status=CaseStatus.PENDING)
    case.labels.clear()
    inbound(channel_off, "again", address=message.identity.address)
    case.refresh_from_db()
    assert case.labels.filter(name="after").exists()
    assert any("could not reply" in e and "switched off" in e for e in events(case))


def test_validation_explains_mistakes():
    team = TeamFactory(name="Known team")
    rule = Rule(
        name="Broken",
        event=RuleEvent.CASE_IDLE,
        conditions=[
            {"field": "chanel", "op": "is", "value": 1},
            {"field": "text", "op": "matches", "value": "(unclosed"},
            {"field": "priority", "op": "above", "value": 1},
        ],
        actions=[
            {"type": "assign_team", "team": 999999},
            {"type": "add_label", "label": "nope"},
            {"type": "fly"},
        ],
    )
    with pytest.raises(ValidationError) as exc:
        rule.full_clean()
    errors = exc.value.message_dict
    text = " ".join(errors["conditions"] + errors["actions"] + errors["idle_minutes"])
    assert "Condition 1: unknown field 'chanel'" in text
    assert "Condition 2: '(unclosed' is not a valid regular expression" in text
    assert "Condition 3: 'priority' cannot use the operator 'above'. Use one of: is, is_not, gte, lte" in text
    assert "Action 1: there is no team with id 999999" in text and "Known team" in text
    assert "Action 2: no label named nope" in text
    assert "Action 3: unknown type 'fly'" in text
    assert "idle minutes" in text
    rule.conditions, rule.actions, rule.idle_minutes = [], [{"type": "assign_team", "team": team.pk}], 10
    rule.full_clean()
