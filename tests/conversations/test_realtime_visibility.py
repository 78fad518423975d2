"""A push reaches only the browsers of users who may see its case (DESIGN.md "Visibility").

Two teams, an agent in each, a supervisor, over the real Redis channel layer and the
real ASGI app: every event kind that carries a case's content is checked both ways.
"""

import pytest
from asgiref.sync import sync_to_async

from conversations import services
from tests.factories import CaseFactory, TeamFactory, UserFactory
from tests.ws import agent_socket

pytestmark = pytest.mark.django_db(transaction=True)

QUIET = 0.6  # seconds a socket must stay silent to count as "received nothing"


def _people():
    team_a, team_b = TeamFactory(name="Billing"), TeamFactory(name="Sales")
    ana, bo = UserFactory(username="ana"), UserFactory(username="bo")
    team_a.members.add(ana)
    team_b.members.add(bo)
    boss = UserFactory(username="boss", role="supervisors")
    return {"team_a": team_a, "team_b": team_b, "ana": ana, "bo": bo, "boss": boss}


async def _sockets(people, *names):
    sockets = {}
    for name in names:
        communicator, connected, _ = await agent_socket(people[name])
        assert connected
        sockets[name] = communicator
    return sockets


async def _events(communicator, *, until=QUIET):
    # receive_nothing, not a receive timeout: a timed-out receive cancels the consumer.
    got = []
    while not await communicator.receive_nothing(timeout=until):
        got.append(await communicator.receive_json_from())
    return got


async def _close(sockets):
    for communicator in sockets.values():
        await communicator.disconnect()


async def test_note_on_team_a_case_reaches_team_a_and_supervisor_only():
    people = await sync_to_async(_people)()
    case = await sync_to_async(CaseFactory)(team=people["team_a"])
    sockets = await _sockets(people, "ana", "bo", "boss")
    await sync_to_async(services.case_note_add)(case=case, author_user=people["ana"], body="Refund approved")
    for name, expected in (("ana", True), ("boss", True), ("bo", False)):
        bodies = [
            e["data"]["message"]["body"]
            for e in await _events(sockets[name])
            if e["event"] == "message.created"
        ]
        assert ("Refund approved" in bodies) is expected, name
    await _close(sockets)


async def test_case_update_of_team_b_never_reaches_team_a():
    people = await sync_to_async(_people)()
    case = await sync_to_async(CaseFactory)(team=people["team_b"])
    sockets = await _sockets(people, "ana", "bo")
    await sync_to_async(services.case_priority_set)(case=case, priority=3, by=people["bo"])
    assert not [e for e in await _events(sockets["ana"]) if e["event"] in ("case.updated", "message.created")]
    assert any(e["event"] == "case.updated" for e in await _events(sockets["bo"]))
    await _close(sockets)


async def test_unrouted_case_reaches_every_agent():
    people = await sync_to_async(_people)()
    case = await sync_to_async(CaseFactory)()
    sockets = await _sockets(people, "ana", "bo", "boss")
    await sync_to_async(services.case_priority_set)(case=case, priority=2, by=people["boss"])
    for name in ("ana", "bo", "boss"):
        assert any(e["event"] == "case.updated" for e in await _events(sockets[name])), name
    await _close(sockets)


async def test_assignee_outside_the_team_hears_their_case_once():
    people = await sync_to_async(_people)()
    case = await sync_to_async(CaseFactory)(team=people["team_a"])
    sockets = await _sockets(people, "ana", "bo")
    # bo is in Sales but the Billing case is given to him: he may see it now.
    await sync_to_async(services.assign_case)(case=case, assignee=people["bo"], by=people["boss"])
    updates = [e for e in await _events(sockets["bo"]) if e["event"] == "case.updated"]
    assert len(updates) == 1
    # ana is in the team and the assignee's group is not hers: one copy for her too.
    assert len([e for e in await _events(sockets["ana"]) if e["event"] == "case.updated"]) == 1
    await _close(sockets)


async def test_supervisor_in_a_team_receives_one_copy():
    people = await sync_to_async(_people)()
    await sync_to_async(people["team_a"].members.add)(people["boss"])
    case = await sync_to_async(CaseFactory)(team=people["team_a"], assignee=people["boss"])
    sockets = await _sockets(people, "boss")
    await sync_to_async(services.case_note_add)(case=case, author_user=people["ana"], body="one copy")
    created = [e for e in await _events(sockets["boss"]) if e["event"] == "message.created"]
    assert len(created) == 1
    await _close(sockets)


async def test_typing_is_told_only_to_the_cases_viewers_and_needs_a_visible_case():
    people = await sync_to_async(_people)()
    case_a = await sync_to_async(CaseFactory)(team=people["team_a"])
    sockets = await _sockets(people, "ana", "bo", "boss")
    await sockets["ana"].send_json_to({"action": "typing", "case": case_a.pk})
    assert [e["event"] for e in await _events(sockets["boss"])] == ["agent.typing"]
    assert await _events(sockets["bo"]) == []
    await _events(sockets["ana"])  # her own signal comes back to her; the script ignores it
    # bo cannot announce typing on (and so learn about) a case he may not see.
    await sockets["bo"].send_json_to({"action": "typing", "case": case_a.pk})
    assert await _events(sockets["ana"]) == []
    await _close(sockets)


async def test_a_client_cannot_widen_its_subscription():
    people = await sync_to_async(_people)()
    case = await sync_to_async(CaseFactory)(team=people["team_a"])
    sockets = await _sockets(people, "bo")
    for attempt in (
        {"action": "subscribe", "group": f"inbox.team.{people['team_a'].pk}"},
        {"action": "subscribe", "team": people["team_a"].pk},
        {"type": "inbox.event", "group": "inbox.supervisors"},
    ):
        await sockets["bo"].send_json_to(attempt)
    await sync_to_async(services.case_note_add)(case=case, author_user=people["ana"], body="secret")
    assert await _events(sockets["bo"]) == []
    await _close(sockets)


async def test_mention_reaches_only_the_mentioned_colleague_who_may_see_the_case():
    people = await sync_to_async(_people)()
    carla = await sync_to_async(UserFactory)(username="Carla")
    await sync_to_async(people["team_a"].members.add)(carla)
    case = await sync_to_async(CaseFactory)(team=people["team_a"])
    sockets = await _sockets(people, "bo")
    carla_socket, _, _ = await agent_socket(carla)
    await sync_to_async(services.case_note_add)(
        case=case, author_user=people["ana"], body="@carla and @bo please look"
    )
    mentions = [e for e in await _events(carla_socket) if e["event"] == "mention.created"]
    assert [m["data"]["user"] for m in mentions] == [carla.pk]
    # bo is mentioned but may not see a Billing case: no notification carries the note to him.
    assert await _events(sockets["bo"]) == []
    assert not await sync_to_async(people["bo"].mentions.exists)()
    await carla_socket.disconnect()
    await _close(sockets)
