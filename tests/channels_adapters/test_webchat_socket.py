"""The visitor's socket and the long-poll fallback, through the real ASGI app over channels_redis."""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.db import connection
from django.test import AsyncClient, Client

from conversations import services
from conversations.cases import case_mark_read
from conversations.delivery import message_deliver
from conversations.models import Case, Message
from helpdesk.asgi import application
from tests.channels_adapters.webchat_support import Frame, webchat_channel
from tests.factories import UserFactory
from tests.ws import agent_socket

pytestmark = pytest.mark.django_db(transaction=True)
QUIET = 0.6


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _session(channel):
    frame = Frame(Client(), channel)
    assert frame.start().status_code == 200
    return frame


async def visitor_socket(channel, token):
    communicator = WebsocketCommunicator(
        application,
        f"/ws/widget/{channel.key}/",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.send_json_to({"action": "auth", "token": token})
    return communicator


async def _events(communicator, *, until=QUIET):
    got = []
    while not await communicator.receive_nothing(timeout=until):
        got.append(await communicator.receive_json_from())
    return got


async def _until(communicator, event, *, timeout=5):
    async def wait():
        while True:
            got = await communicator.receive_json_from(timeout=timeout)
            if got["event"] == event:
                return got["data"]

    return await asyncio.wait_for(wait(), timeout)


async def test_a_bad_token_closes_the_socket():
    channel = await sync_to_async(webchat_channel)()
    communicator = await visitor_socket(channel, "forged")
    error = await communicator.receive_json_from()
    assert error["event"] == "error" and error["data"]["code"] == "invalid_token"
    assert (await communicator.receive_output())["code"] == 4401


async def test_messages_typing_and_seen_both_ways_in_real_time():
    channel = await sync_to_async(webchat_channel)()
    frame = await sync_to_async(_session)(channel)
    agent = await sync_to_async(UserFactory)(first_name="Lucía")
    inbox, connected, _ = await agent_socket(agent)
    assert connected
    visitor = await visitor_socket(channel, frame.token)
    assert (await _until(visitor, "ready"))["verified"] is False

    await visitor.send_json_to({"action": "message", "client_id": "c-1", "text": "¿Tenéis la talla 42?"})
    echo = await _until(visitor, "message.created")
    assert echo["message"]["client_id"] == "c-1" and echo["message"]["direction"] == "in"
    case_id = echo["case"]["id"]
    pushed = await _until(inbox, "message.created")
    assert pushed["message"]["body"] == "¿Tenéis la talla 42?"

    await visitor.send_json_to({"action": "typing", "typing": True})
    typing = await _until(inbox, "visitor.typing")
    assert typing == {"case": case_id, "thread": pushed["message"]["thread"], "typing": True}

    await inbox.send_json_to({"action": "typing", "case": case_id, "to_customer": True})
    assert (await _until(visitor, "agent.typing"))["name"] == "Lucía"
    # Writing a note is not writing to the customer.
    await inbox.send_json_to({"action": "typing", "case": case_id, "to_customer": False})
    assert not [e for e in await _events(visitor) if e["event"] == "agent.typing"]

    case = await sync_to_async(Case.objects.get)(pk=case_id)
    await sync_to_async(case_mark_read)(case=case, user=agent)
    assert (await _until(visitor, "seen"))["up_to"] == echo["message"]["id"]

    reply = await sync_to_async(services.send_reply)(case=case, author_user=agent, body="Sí, la tenemos.")
    await sync_to_async(message_deliver)(message_id=reply.pk)
    got = await _until(visitor, "message.created")
    assert got["message"]["text"] == "Sí, la tenemos." and got["message"]["author_name"] == "Lucía"
    await visitor.disconnect()
    await inbox.disconnect()


async def test_one_visitor_hears_nothing_of_another():
    channel = await sync_to_async(webchat_channel)()
    ana, bo = await sync_to_async(_session)(channel), await sync_to_async(_session)(channel)
    ana_socket, bo_socket = await visitor_socket(channel, ana.token), await visitor_socket(channel, bo.token)
    await _until(ana_socket, "ready")
    await _until(bo_socket, "ready")
    await ana_socket.send_json_to({"action": "message", "client_id": "a-1", "text": "ana's secret"})
    assert (await _until(ana_socket, "message.created"))["message"]["text"] == "ana's secret"
    case = await sync_to_async(Case.objects.get)()
    reply = await sync_to_async(services.send_reply)(case=case, author_user=None, body="for ana only")
    await sync_to_async(message_deliver)(message_id=reply.pk)
    assert "for ana only" in str(await _events(ana_socket))
    heard = await _events(bo_socket)
    assert not [e for e in heard if e["event"] == "message.created"], heard
    await ana_socket.disconnect()
    await bo_socket.disconnect()


async def test_the_long_poll_answers_as_soon_as_a_reply_reaches_the_visitor():
    channel = await sync_to_async(webchat_channel)()
    frame = await sync_to_async(_session)(channel)
    await sync_to_async(frame.send)("hello from behind a proxy")
    first = await sync_to_async(Message.objects.get)()
    case = await sync_to_async(Case.objects.get)()

    def reply_later():
        import time

        time.sleep(0.5)
        message = services.send_reply(case=case, author_user=None, body="long-polled")
        message_deliver(message_id=message.pk)
        connection.close()

    thread = threading.Thread(target=reply_later)
    loop = asyncio.get_running_loop()
    started = loop.time()
    thread.start()
    response = await AsyncClient().get(
        frame.url("messages"), {"after": first.pk, "wait": 10}, headers=frame.headers()
    )
    elapsed = loop.time() - started
    thread.join()
    assert response.status_code == 200
    assert [m["text"] for m in response.json()["messages"]] == ["long-polled"]
    assert elapsed < 5, "answered when the reply came, not at the end of the wait"
