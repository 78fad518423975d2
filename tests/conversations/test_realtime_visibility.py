"""A push reaches only the browsers of users who may see its case (DESIGN.md "Visibility").

Two teams, an agent in each, a supervisor, over the real Redis channel layer and the
real ASGI app: every event kind that carries a case's content is checked both ways.
"""

import pytest
from asgiref.sync import sync_to_async

from conversations import cases
from tests.factories import CaseFactory, UserFactory
from tests.ws import agent_socket

pytestmark = pytest.mark.django_db(transaction=True)

QUIET = 0.6  # seconds a socket must stay silent to count as "received nothing"


async def _sockets(org, *names):
    sockets = {}
    for name in names:
        communicator, connected, _ = await agent_socket(org[name])
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


async def test_note_on_team_a_case_reaches_team_a_and_supervisor_only(org):
    case = await sync_to_async(CaseFactory)(team=org["billing"])
    sockets = await _sockets(org, "ana", "bo", "boss")
    await sync_to_async(cases.case_note_add)(case=case, author_user=org["ana"], body="Refund approved")
    for name, expected in (("ana", True), ("boss", True), ("bo", False)):
        bodies = [
            e["data"]["message"]["body"]
            for e in await _events(sockets[name])
            if e["event"] == "message.created"
        ]
        assert ("Refund approved" in bodies) is expected, name
    await _close(sockets)


async def test_case_update_of_team_b_never_reaches_team_a(org):
    case = await sync_to_async(CaseFactory)(team=org["sales"])
    sockets = await _sockets(org, "ana", "bo")
    await sync_to_async(cases.case_priority_set)(case=case, priority=3, by=org["bo"])
    assert not [e for e in await _events(sockets["ana"]) if e["event"] in ("case.updated", "message.created")]
    assert any(e["event"] == "case.updated" for e in await _events(sockets["bo"]))
    await _close(sockets)


async def test_unrouted_case_reaches_every_agent(org):
    case = await sync_to_async(CaseFactory)()
    sockets = await _sockets(org, "ana", "bo", "boss")
    await sync_to_async(cases.case_priority_set)(case=case, priority=2, by=org["boss"])
    for name in ("ana", "bo", "boss"):
        assert any(e["event"] == "case.updated" for e in await _events(sockets[name])), name
    await _close(sockets)


async def test_assignee_outside_the_team_hears_their_case_once(org):
    case = await sync_to_async(CaseFactory)(team=org["billing"])
    sockets = await _sockets(org, "ana", "bo")
    # bo is in Sales but the Billing case is given to him: he may see it now.
    await sync_to_async(cases.assign_case)(case=case, assignee=org["bo"], by=org["boss"])
    updates = [e for e in await _events(sockets["bo"]) if e["event"] == "case.updated"]
    assert len(updates) == 1
    # ana is in the team and the assignee's group is not hers: one copy for her too.
    assert len([e for e in await _events(sockets["ana"]) if e["event"] == "case.updated"]) == 1
    await _close(sockets)


async def test_supervisor_in_a_team_receives_one_copy(org):
    await sync_to_async(org["billing"].members.add)(org["boss"])
    case = await sync_to_async(CaseFactory)(team=org["billing"], assignee=org["boss"])
    sockets = await _sockets(org, "boss")
    await sync_to_async(cases.case_note_add)(case=case, author_user=org["ana"], body="one copy")
    created = [e for e in await _events(sockets["boss"]) if e["event"] == "message.created"]
    assert len(created) == 1
    await _close(sockets)


async def test_typing_is_told_only_to_the_cases_viewers_and_needs_a_visible_case(org):
    case_a = await sync_to_async(CaseFactory)(team=org["billing"])
    sockets = await _sockets(org, "ana", "bo", "boss")
    await sockets["ana"].send_json_to({"action": "typing", "case": case_a.pk})
    assert [e["event"] for e in await _events(sockets["boss"])] == ["agent.typing"]
    assert await _events(sockets["bo"]) == []
    await _events(sockets["ana"])  # her own signal comes back to her; the script ignores it
    # bo cannot announce typing on (and so learn about) a case he may not see.
    await sockets["bo"].send_json_to({"action": "typing", "case": case_a.pk})
    assert await _events(sockets["ana"]) == []
    await _close(sockets)


async def test_a_client_cannot_widen_its_subscription(org):
    case = await sync_to_async(CaseFactory)(team=org["billing"])
    sockets = await _sockets(org, "bo")
    for attempt in (
        {"action": "subscribe", "group": f"inbox.team.{org['billing'].pk}"},
        {"action": "subscribe", "team": org["billing"].pk},
        {"type": "inbox.event", "group": "inbox.supervisors"},
    ):
        await sockets["bo"].send_json_to(attempt)
    await sync_to_async(cases.case_note_add)(case=case, author_user=org["ana"], body="secret")
    assert await _events(sockets["bo"]) == []
    await _close(sockets)


async def test_mention_reaches_only_the_mentioned_colleague_who_may_see_the_case(org):
    carla = await sync_to_async(UserFactory)(username="Carla")
    await sync_to_async(org["billing"].members.add)(carla)
    case = await sync_to_async(CaseFactory)(team=org["billing"])
    sockets = await _sockets(org, "bo")
    carla_socket, _, _ = await agent_socket(carla)
    await sync_to_async(cases.case_note_add)(
        case=case, author_user=org["ana"], body="@carla and @bo please look"
    )
    mentions = [e for e in await _events(carla_socket) if e["event"] == "mention.created"]
    assert [m["data"]["user"] for m in mentions] == [carla.pk]
    # bo is mentioned but may not see a Billing case: no notification carries the note to him.
    assert await _events(sockets["bo"]) == []
    assert not await sync_to_async(org["bo"].mentions.exists)()
    await carla_socket.disconnect()
    await _close(sockets)


async def test_sla_warning_and_screen_pop_follow_the_case(org):
    from conversations import realtime

    case = await sync_to_async(CaseFactory)(team=org["billing"])
    sockets = await _sockets(org, "ana", "bo", "boss")
    await sync_to_async(realtime.publish)("sla.warning", {"case": case.pk}, case=case)
    await sync_to_async(realtime.publish)("call.incoming", {"case": {"id": case.pk}}, case_id=case.pk)
    for name, expected in (
        ("ana", ["sla.warning", "call.incoming"]),
        ("boss", ["sla.warning", "call.incoming"]),
    ):
        assert [e["event"] for e in await _events(sockets[name])] == expected, name
    assert await _events(sockets["bo"]) == []
    await _close(sockets)


async def test_a_push_nobody_scoped_reaches_only_supervisors(org):
    from conversations import realtime

    sockets = await _sockets(org, "ana", "boss")
    await sync_to_async(realtime.publish)("something.new", {"secret": "x"})
    assert [e["event"] for e in await _events(sockets["boss"])] == ["something.new"]
    assert await _events(sockets["ana"]) == []
    await _close(sockets)
