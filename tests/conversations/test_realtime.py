"""Agents' browsers hear about new messages over the real Redis channel layer."""

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from channels_adapters.base import Sender
from conversations.services import receive_inbound
from tests.factories import CaseFactory, ChannelFactory, UserFactory
from tests.ws import agent_socket

pytestmark = pytest.mark.django_db(transaction=True)


async def test_agent_receives_new_inbound_message():
    assert "Redis" in settings.CHANNEL_LAYERS["default"]["BACKEND"]
    agent = await sync_to_async(UserFactory)()
    channel = await sync_to_async(ChannelFactory)()
    communicator, connected, _ = await agent_socket(agent)
    assert connected
    await sync_to_async(receive_inbound)(
        channel=channel,
        sender=Sender("email", "ana@example.com", "Ana"),
        external_id="ws-1",
        text="Is anyone there?",
    )
    events = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
    created = next(e for e in events if e["event"] == "message.created")
    assert created["data"]["message"]["body"] == "Is anyone there?"
    assert created["data"]["case"]["status"] == "open"
    assert {e["event"] for e in events} == {"message.created", "case.updated"}
    await communicator.disconnect()


async def test_anonymous_socket_is_refused():
    communicator, connected, code = await agent_socket(None)
    assert not connected and code == 4403


async def test_typing_signal_reaches_colleagues():
    ana, bo = await sync_to_async(UserFactory)(), await sync_to_async(UserFactory)()
    case = await sync_to_async(CaseFactory)()
    first, _, _ = await agent_socket(ana)
    second, _, _ = await agent_socket(bo)
    await first.send_json_to({"action": "typing", "case": case.pk})
    heard = await second.receive_json_from(timeout=5)
    assert heard["event"] == "agent.typing" and heard["data"]["case"] == case.pk
    assert heard["data"]["user"] == ana.pk
    await first.disconnect()
    await second.disconnect()


async def test_a_workers_burst_of_pushes_arrives_in_order_once_each_in_few_sends():
    import asyncio

    from channels.layers import get_channel_layer

    from conversations import realtime, visibility

    agent = await sync_to_async(UserFactory)()
    communicator, connected, _ = await agent_socket(agent)
    assert connected
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(visibility.UNROUTED_GROUP, listener)

    def burst():  # as a Celery worker pushes: a plain thread, no ASGI loop
        for n in range(60):
            realtime.publish("message.created", {"n": n}, everyone=True)
        realtime.pushes_flush()

    await asyncio.to_thread(burst)

    received = [await communicator.receive_json_from(timeout=5) for _ in range(60)]
    assert [e["data"]["n"] for e in received] == list(range(60))
    assert await communicator.receive_nothing(timeout=0.5)  # each once, though in two of its groups
    sends = []
    while len([n for s in sends for n in s]) < 60:
        message = await asyncio.wait_for(layer.receive(listener), timeout=5)
        events = message["events"] if message["type"] == "inbox.events" else [message]
        sends.append([e["data"]["n"] for e in events])
    assert [n for s in sends for n in s] == list(range(60))
    assert len(sends) < 60  # what piled up during a send left together
    await layer.group_discard(visibility.UNROUTED_GROUP, listener)
    await communicator.disconnect()
