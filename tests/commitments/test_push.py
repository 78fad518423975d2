"""A commitment's change is pushed live only to the browsers of users who may see its case."""

import pytest
from asgiref.sync import sync_to_async

from commitments import services
from tests.factories import CaseFactory, MessageFactory
from tests.ws import agent_socket

pytestmark = pytest.mark.django_db(transaction=True)

QUIET = 0.6


async def _events(communicator):
    got = []
    while not await communicator.receive_nothing(timeout=QUIET):
        got.append(await communicator.receive_json_from())
    return got


async def test_marking_and_fulfilling_reach_the_case_team_and_supervisors_only(org):
    case = await sync_to_async(CaseFactory)(team=org["billing"])
    message = await sync_to_async(MessageFactory)(case=case)
    sockets = {}
    for name in ("ana", "bo", "boss"):
        communicator, connected, _ = await agent_socket(org[name])
        assert connected
        sockets[name] = communicator
    commitment = await sync_to_async(services.commitment_create)(
        message=message, text="Refund by Friday", by=org["ana"]
    )
    await sync_to_async(services.commitment_fulfil)(commitment=commitment, by=org["ana"])
    for name, expected in (("ana", True), ("boss", True), ("bo", False)):
        changes = [
            (e["data"]["change"], e["data"]["commitment"]["text"])
            for e in await _events(sockets[name])
            if e["event"] == "commitment.changed"
        ]
        wanted = [("commitment.created", "Refund by Friday"), ("commitment.fulfilled", "Refund by Friday")]
        assert (changes == wanted) is expected, (name, changes)
    for communicator in sockets.values():
        await communicator.disconnect()
