"""Presence from the real inbox WebSocket: connect, heartbeat, disconnect (two tabs)."""

import pytest
from asgiref.sync import sync_to_async

from automation.models import AgentPresence
from automation.presence import presence_is_available
from conversations.models import Case
from tests.automation.factories import team_with_agents
from tests.factories import CaseFactory
from tests.ws import agent_socket

pytestmark = pytest.mark.django_db(transaction=True)


def _presence(user):
    return AgentPresence.objects.filter(user=user).first()


async def test_socket_makes_the_agent_available_and_takes_the_queue():
    team, (agent,) = await sync_to_async(team_with_agents)(1, capacity=2, online=False)
    waiting = await sync_to_async(CaseFactory)(team=team)
    assert not presence_is_available(await sync_to_async(_presence)(agent))

    first, connected, _ = await agent_socket(agent)
    second, _, _ = await agent_socket(agent)  # a second tab
    assert connected
    presence = await sync_to_async(_presence)(agent)
    assert presence.connections == 2 and presence_is_available(presence)
    # Coming online drained the team's queue.
    assert (await sync_to_async(Case.objects.get)(pk=waiting.pk)).assignee_id == agent.pk

    await first.send_json_to({"action": "heartbeat"})
    await first.disconnect()
    presence = await sync_to_async(_presence)(agent)
    assert presence.connections == 1 and presence_is_available(presence)
    await second.disconnect()
    presence = await sync_to_async(_presence)(agent)
    assert presence.connections == 0 and not presence_is_available(presence)
    assert presence.unavailable_since is not None
