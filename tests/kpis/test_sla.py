import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers

from channels_adapters.base import Sender
from conversations.cases import assign_case
from conversations.models import Priority
from conversations.services import receive_inbound, send_reply
from conversations.visibility import SUPERVISORS_GROUP
from kpis.models import BusinessHours, CaseSla, SlaPolicy
from kpis.selectors import kpi_report
from kpis.services import business_deadline, sla_check, sla_policy_for
from tests.factories import CaseFactory, ChannelFactory, TeamFactory, UserFactory, provider_accepts
from tests.kpis.factories import at

pytestmark = pytest.mark.django_db

WEEKDAYS = {day: [["09:00", "13:00"], ["14:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture
def madrid(db):
    # 2026-03-02 is a Monday; Madrid is UTC+1 until 29 March.
    return BusinessHours.objects.create(
        name="Madrid office", time_zone="Europe/Madrid", weekly=WEEKDAYS, holidays=["2026-03-09"]
    )


@pytest.mark.parametrize(
    "start, minutes, due",
    [
        ("2026-03-02T08:30", 30, "2026-03-02T09:00"),  # 09:30 Madrid, inside the morning
        ("2026-03-02T11:45", 30, "2026-03-02T13:15"),  # 12:45 + 15 min, lunch, then 15 min after 14:00
        ("2026-03-02T07:00", 60, "2026-03-02T09:00"),  # before opening: starts at 09:00 local
        ("2026-03-06T16:30", 60, "2026-03-10T08:30"),  # Friday 17:30, weekend, Monday the 9th is a holiday
        (
            "2026-03-27T16:00",
            120,
            "2026-03-30T08:00",
        ),  # Friday 17:00 CET, Monday 10:00 CEST after the DST change
    ],
)
def test_business_hours_deadline(madrid, start, minutes, due):
    assert business_deadline(start=at(start), minutes=minutes, hours=madrid) == at(due)


def test_round_the_clock_without_business_hours():
    assert business_deadline(start=at("2026-03-07T23:50"), minutes=30, hours=None) == at("2026-03-08T00:20")


def test_most_specific_policy_wins(db):
    email, chat = ChannelFactory(), ChannelFactory()
    anything = SlaPolicy.objects.create(name="Default", first_response_minutes=240)
    urgent = SlaPolicy.objects.create(name="Urgent", priority=Priority.URGENT, first_response_minutes=30)
    on_email = SlaPolicy.objects.create(name="Email", channel=email, first_response_minutes=120)
    urgent_email = SlaPolicy.objects.create(
        name="Urgent email", channel=email, priority=Priority.URGENT, first_response_minutes=15
    )
    SlaPolicy.objects.create(name="Off", channel=email, priority=Priority.URGENT, is_active=False)
    assert sla_policy_for(case=CaseFactory.build(origin_channel=chat, priority=Priority.NORMAL)) == anything
    assert sla_policy_for(case=CaseFactory.build(origin_channel=chat, priority=Priority.URGENT)) == urgent
    assert sla_policy_for(case=CaseFactory.build(origin_channel=email, priority=Priority.LOW)) == on_email
    assert (
        sla_policy_for(case=CaseFactory.build(origin_channel=email, priority=Priority.URGENT)) == urgent_email
    )


def test_policies_are_cached_and_an_admins_change_is_seen_at_once(db, django_assert_num_queries):
    chat = ChannelFactory()
    default = SlaPolicy.objects.create(name="Default", first_response_minutes=240)
    case = CaseFactory.build(origin_channel=chat, priority=Priority.NORMAL)
    assert sla_policy_for(case=case) == default
    with django_assert_num_queries(0):  # a burst of new cases does not ask again
        assert sla_policy_for(case=case) == default
    on_chat = SlaPolicy.objects.create(name="Chat", channel=chat, first_response_minutes=60)
    assert sla_policy_for(case=case) == on_chat
    on_chat.is_active = False
    on_chat.save()
    assert sla_policy_for(case=case) == default
    default.delete()
    assert sla_policy_for(case=case) is None


@pytest.fixture
def inbox_listener():
    """Subscribe to the supervisors group on the real Redis layer; each call is a new listener.

    A fresh layer instance per listener: its receive buffer lives in one event loop.
    """
    subscriptions = []

    def subscribe():
        layer = channel_layers.make_backend("default")
        name = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(SUPERVISORS_GROUP, name)
        subscriptions.append((layer, name))

        async def drain():
            received = []
            while True:
                try:
                    received.append(await asyncio.wait_for(layer.receive(name), timeout=1.0))
                except TimeoutError:
                    return [(m["event"], m["data"]) for m in received if m["event"].startswith("sla.")]

        return lambda: async_to_sync(drain)()

    yield subscribe
    for layer, name in subscriptions:
        async_to_sync(layer.group_discard)(SUPERVISORS_GROUP, name)


def open_case(capture, text: str = "Help"):
    """Eva writes in now (the test's frozen clock); on-commit hooks (SLA due times) run."""
    with capture(execute=True):
        return receive_inbound(
            channel=ChannelFactory(), sender=Sender("email", "eva@example.com"), external_id="e1", text=text
        ).message.case


def compliance_on_march_2():
    report = kpi_report(start=at("2026-03-02T00:00").date(), end=at("2026-03-03T00:00").date())
    return report["totals"]["sla_compliance"]


def test_opened_case_gets_due_times_then_a_warning_then_a_breach(
    madrid, time_machine, django_capture_on_commit_callbacks, inbox_listener
):
    team = TeamFactory(name="Support ES")
    madrid.team = team
    madrid.save()
    SlaPolicy.objects.create(name="1h", first_response_minutes=60, resolution_minutes=8 * 60)
    time_machine.move_to(at("2026-03-02T08:30"), tick=False)  # Monday 09:30 in Madrid
    case = open_case(django_capture_on_commit_callbacks)
    sla = CaseSla.objects.get(case=case)
    # No team yet: the company's default hours (none) -> round the clock.
    assert sla.first_response_due == at("2026-03-02T09:30")
    with django_capture_on_commit_callbacks(execute=True):
        assign_case(case=case, team=team)
    sla.refresh_from_db()
    assert sla.first_response_due == at("2026-03-02T09:30")  # within Madrid's morning either way
    # 8 working hours: 3.5 h before lunch, 4 h after, the last 30 min on Tuesday morning.
    assert sla.resolution_due == at("2026-03-03T08:30")

    time_machine.move_to(at("2026-03-02T09:20"), tick=False)  # 10 min left: within the 15-min warning
    heard = inbox_listener()
    with django_capture_on_commit_callbacks(execute=True):
        assert sla_check() == {"warned": 1, "breached": 0}
        assert sla_check() == {"warned": 0, "breached": 0}  # pushed once

    [(event, data)] = heard()
    assert event == "sla.warning"
    assert data["case"] == case.pk and data["target"] == "first_response" and data["seconds_left"] == 10 * 60

    time_machine.move_to(at("2026-03-02T09:31"), tick=False)
    heard = inbox_listener()
    with django_capture_on_commit_callbacks(execute=True):
        assert sla_check() == {"warned": 0, "breached": 1}
    assert [e for e, _ in heard()] == ["sla.breached"]
    sla.refresh_from_db()
    assert sla.first_response_breached_at == at("2026-03-02T09:31")

    time_machine.move_to(at("2026-03-02T09:40"), tick=False)
    send_reply(case=case, author_user=UserFactory(), body="Looking into it")
    assert compliance_on_march_2() == 0.0


def test_answered_in_time_is_compliant_and_never_warned(time_machine, django_capture_on_commit_callbacks):
    SlaPolicy.objects.create(name="1h", first_response_minutes=60)
    time_machine.move_to(at("2026-03-02T08:30"), tick=False)
    case = open_case(django_capture_on_commit_callbacks)
    time_machine.move_to(at("2026-03-02T08:45"), tick=False)
    provider_accepts(send_reply(case=case, author_user=UserFactory(), body="Here I am"))
    time_machine.move_to(at("2026-03-02T09:25"), tick=False)
    assert sla_check() == {"warned": 0, "breached": 0}
    assert compliance_on_march_2() == 1.0


def test_still_within_its_due_time_is_not_counted_yet(time_machine, django_capture_on_commit_callbacks):
    SlaPolicy.objects.create(name="1h", first_response_minutes=60)
    time_machine.move_to(at("2026-03-02T08:30"), tick=False)
    open_case(django_capture_on_commit_callbacks, text="Hi")
    assert compliance_on_march_2() is None
