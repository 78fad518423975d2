"""Auto-assignment: fairness, capacity, the queue when capacity frees, presence, concurrency."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from automation.assignment import case_auto_assign, stale_cases_reassign, teams_drain
from automation.models import AgentPresence, AssignmentMode
from automation.presence import presence_away_set, presence_connect, presence_disconnect, presence_expire
from conversations.cases import assign_case, set_case_status
from conversations.models import Case, CaseStatus, MessageKind
from tests.automation.factories import team_with_agents
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _cases(team, n, **kwargs):
    now = timezone.now()
    # Distinct waiting times: the queue order is the longest waiting first.
    return [
        CaseFactory(team=team, waiting_since=now - timedelta(minutes=100 - i), **kwargs) for i in range(n)
    ]


def _loads(agents):
    return [Case.objects.filter(assignee=a).exclude(status=CaseStatus.RESOLVED).count() for a in agents]


def test_three_agents_capacity_two_ten_cases_fair_and_capped():
    team, agents = team_with_agents(3, capacity=2)
    cases = _cases(team, 10)
    # The first assignment's "assigned" event drains the rest of the queue in order.
    for case in cases:
        case_auto_assign(case_id=case.pk)
    assert _loads(agents) == [2, 2, 2]
    owners = list(
        Case.objects.filter(team=team).order_by("waiting_since").values_list("assignee_id", flat=True)
    )
    # Round-robin, longest waiting first: the oldest six go a, b, c, a, b, c; four wait.
    assert len(set(owners[:3])) == 3 and owners[3:6] == owners[:3]
    assert owners[6:] == [None] * 4


def test_least_loaded_prefers_the_emptiest_agent():
    team, agents = team_with_agents(3, capacity=5, mode=AssignmentMode.LEAST_LOADED)
    for case in _cases(team, 3):
        assign_case(case=case, assignee=agents[0])  # ana holds three by hand
    assert case_auto_assign(case_id=_cases(team, 1)[0].pk) != agents[0]
    assert [case_auto_assign(case_id=c.pk) for c in _cases(team, 4)].count(agents[0]) == 0
    assert _loads(agents) == [3, 3, 2]  # ana got none of the five


def test_burst_of_nine_is_even():
    team, agents = team_with_agents(3, capacity=10)
    for case in _cases(team, 9):
        case_auto_assign(case_id=case.pk)
    assert _loads(agents) == [3, 3, 3]


def test_queued_case_assigned_when_capacity_frees():
    team, agents = team_with_agents(3, capacity=2)
    cases = _cases(team, 10)
    for case in cases:
        case_auto_assign(case_id=case.pk)
    oldest_queued = Case.objects.filter(team=team, assignee__isnull=True).order_by("waiting_since").first()
    done = Case.objects.filter(assignee=agents[1]).first()
    set_case_status(case=done, status=CaseStatus.RESOLVED)  # the receiver drains the queue
    oldest_queued.refresh_from_db()
    assert oldest_queued.assignee == agents[1]
    assert _loads(agents) == [2, 2, 2]
    assert Case.objects.filter(team=team, assignee__isnull=True).count() == 3


def test_new_case_in_team_is_assigned_by_the_receiver():
    team, agents = team_with_agents(2, capacity=2)
    case = CaseFactory()
    assign_case(case=case, team=team)  # e.g. an agent moves it to the team
    case.refresh_from_db()
    assert case.assignee in agents


def test_offline_and_away_agents_are_skipped():
    team, agents = team_with_agents(3, capacity=5)
    presence_disconnect(user_id=agents[0].pk)
    presence_away_set(user_id=agents[1].pk, away=True)
    for case in _cases(team, 3):
        case_auto_assign(case_id=case.pk)
    assert _loads(agents) == [0, 0, 3]


def test_silent_socket_expires():
    team, agents = team_with_agents(1, capacity=5)
    AgentPresence.objects.filter(user=agents[0]).update(last_seen_at=timezone.now() - timedelta(minutes=10))
    assert case_auto_assign(case_id=_cases(team, 1)[0].pk) is None
    assert presence_expire() == 1


def test_agent_coming_online_takes_the_queue():
    team, agents = team_with_agents(1, capacity=2, online=False)
    cases = _cases(team, 3)
    assert teams_drain() == 0
    presence_connect(user_id=agents[0].pk)
    assert _loads(agents) == [2]
    assert Case.objects.get(pk=cases[2].pk).assignee is None  # the newest waits


def test_away_toggle_back_takes_the_queue():
    team, agents = team_with_agents(1, capacity=2)
    presence_away_set(user_id=agents[0].pk, away=True)
    cases = _cases(team, 1)
    assert Case.objects.get(pk=cases[0].pk).assignee is None
    presence_away_set(user_id=agents[0].pk, away=False)
    assert Case.objects.get(pk=cases[0].pk).assignee == agents[0]


def test_offline_agent_keeps_cases_unless_team_reassigns():
    team, agents = team_with_agents(2, capacity=5, reassign_after_minutes=10)
    case = _cases(team, 1)[0]
    assign_case(case=case, assignee=agents[0])
    presence_disconnect(user_id=agents[0].pk)
    assert stale_cases_reassign() == 0  # not 10 minutes yet: still theirs
    AgentPresence.objects.filter(user=agents[0]).update(
        unavailable_since=timezone.now() - timedelta(minutes=11)
    )
    assert stale_cases_reassign() == 1
    case.refresh_from_db()
    assert case.assignee == agents[1]  # back to the queue, then to the one online
    assert case.messages.filter(kind=MessageKind.SYSTEM, body__contains="offline for 10 minutes").exists()


def test_team_without_reassign_keeps_offline_agents_cases():
    team, agents = team_with_agents(2, capacity=5)
    case = _cases(team, 1)[0]
    assign_case(case=case, assignee=agents[0])
    presence_disconnect(user_id=agents[0].pk)
    AgentPresence.objects.filter(user=agents[0]).update(unavailable_since=timezone.now() - timedelta(days=1))
    assert stale_cases_reassign() == 0
    case.refresh_from_db()
    assert case.assignee == agents[0]


@pytest.mark.parametrize("agents_count", [1, 2])
def test_concurrent_workers_never_exceed_capacity(agents_count):
    """Workers assigning at once (real threads, real PostgreSQL connections)."""
    team, agents = team_with_agents(agents_count, capacity=2)
    cases = _cases(team, 12)
    barrier = threading.Barrier(len(cases))
    errors = []

    def worker(case_id):
        try:
            barrier.wait(timeout=20)
            case_auto_assign(case_id=case_id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(c.pk,)) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert _loads(agents) == [2] * agents_count


def test_concurrent_workers_of_two_teams_sharing_an_agent():
    """An agent in two teams: the presence row lock keeps their total under capacity."""
    team_a, (shared,) = team_with_agents(1, capacity=2)
    team_b, _ = team_with_agents(0, capacity=2)
    team_b.members.add(shared)
    cases = _cases(team_a, 5) + _cases(team_b, 5)
    barrier = threading.Barrier(len(cases))

    def worker(case_id):
        try:
            barrier.wait(timeout=20)
            case_auto_assign(case_id=case_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(c.pk,)) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert _loads([shared]) == [2]
