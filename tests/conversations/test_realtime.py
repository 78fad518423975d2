"""Agents' browsers hear about new messages over the real Redis channel layer."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from channels_adapters.base import Sender
from conversations.services import receive_inbound
from helpdesk.asgi import application
from tests.factories import ChannelFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(user=None):
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if user is not None:
        from django.test import Client

        client = Client()
        await sync_to_async(client.force_login)(user)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def test_agent_receives_new_inbound_message():
    assert "Redis" in settings.CHANNEL_LAYERS["default"]["BACKEND"]
    agent = await sync_to_async(UserFactory)()
    channel = await sync_to_async(ChannelFactory)()
    communicator, connected, _ = await _connect(agent)
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
    communicator, connected, code = await _connect(None)
    assert not connected and code == 4403


async def test_typing_signal_reaches_colleagues():
    ana, bo = await sync_to_async(UserFactory)(), await sync_to_async(UserFactory)()
    first, _, _ = await _connect(ana)
    second, _, _ = await _connect(bo)
    await first.send_json_to({"action": "typing", "case": 42})
    heard = await second.receive_json_from(timeout=5)
    assert heard["event"] == "agent.typing" and heard["data"]["case"] == 42
    assert heard["data"]["user"] == ana.pk
    await first.disconnect()
    await second.disconnect()
