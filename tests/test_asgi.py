"""The ASGI entry point: leased request threads, and webhooks through Django's sync path."""

import asyncio
import json
import threading

import pytest
from asgiref.sync import sync_to_async

from channels_adapters.base import hmac_sha256_hex
from channels_adapters.models import InboundEvent
from helpdesk.request_threads import RequestThreadPool
from tests.factories import ChannelFactory


def http_scope(path: str, *, method: str = "GET", headers: list | None = None) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


async def call(app, scope, body: bytes = b"", *, disconnect: bool = False) -> dict:
    """One request through an ASGI app; returns status, headers and body as sent."""
    messages = [{"type": "http.disconnect"}] if disconnect else [{"type": "http.request", "body": body}]
    sent = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # nothing more: the client waits for the answer

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    if not sent:
        return {}
    return {
        "status": sent[0]["status"],
        "headers": dict(sent[0]["headers"]),
        "body": b"".join(m.get("body", b"") for m in sent[1:]),
    }


def signed_post(channel, body: bytes, secret: str | None = None) -> dict:
    signature = "sha256=" + hmac_sha256_hex(secret or channel.credentials["secret"], body)
    return http_scope(
        channel.webhook_path,
        method="POST",
        headers=[
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-signature", signature.encode()),
        ],
    )


@pytest.fixture
def application(transactional_db):
    # The app runs its sync code on its own threads (own connections): rows
    # must be committed for it to see them, hence transactional_db.
    from helpdesk.asgi import application

    return application


def test_signed_webhook_is_stored_and_answered_through_the_asgi_app(application):
    channel = ChannelFactory()
    body = json.dumps({"external_id": "asgi-1", "from": {"phone": "+14155550100"}, "text": "hi"}).encode()
    answer = asyncio.run(call(application, signed_post(channel, body), body))
    assert answer["status"] == 200
    assert json.loads(answer["body"])["ok"] is True
    assert answer["headers"][b"content-type"] == b"application/json"
    event = InboundEvent.objects.get(channel=channel)
    assert event.body_bytes == body and event.headers["X-Signature"].startswith("sha256=")


def test_forged_webhook_is_refused_through_the_asgi_app_and_nothing_stored(application):
    channel = ChannelFactory()
    body = b'{"external_id": "asgi-2", "from": {"phone": "+14155550100"}, "text": "hi"}'
    answer = asyncio.run(call(application, signed_post(channel, body, secret="wrong"), body))
    assert answer["status"] == 403
    assert b"signature" in answer["body"].lower()
    assert not InboundEvent.objects.exists()


def test_unknown_webhook_key_is_404_and_pages_still_answer(application):
    unknown = asyncio.run(call(application, http_scope("/hooks/no-such-channel/", method="POST")))
    assert unknown["status"] == 404
    health = asyncio.run(call(application, http_scope("/healthz")))
    assert health["status"] == 200 and json.loads(health["body"]) == {"ok": True}


def test_provider_hanging_up_before_the_body_stores_nothing(application):
    channel = ChannelFactory()
    answer = asyncio.run(call(application, signed_post(channel, b"{}"), disconnect=True))
    assert answer == {}
    assert not InboundEvent.objects.exists()


def thread_recorder():
    """An ASGI app whose request makes two sync calls and records the threads they ran on."""
    seen, running = [], {"now": 0, "max": 0}
    release = asyncio.Event()

    async def app(scope, receive, send):
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])
        first = await sync_to_async(threading.get_ident)()
        await release.wait()
        second = await sync_to_async(threading.get_ident)()
        seen.append((first, second))
        running["now"] -= 1

    return app, seen, running, release


async def test_requests_share_a_few_long_lived_threads_one_each_at_a_time():
    app, seen, running, release = thread_recorder()
    pool = RequestThreadPool(app, size=2)
    requests = [asyncio.create_task(pool(http_scope("/"), None, None)) for _ in range(6)]
    await asyncio.sleep(0.05)
    assert running["now"] == 2  # the other four wait for a thread
    release.set()
    await asyncio.gather(*requests)
    assert running["max"] == 2
    assert all(first == second for first, second in seen)  # one request, one thread
    threads = {first for first, _ in seen}
    assert len(threads) == 2
    await pool(http_scope("/"), None, None)
    assert seen[-1][0] in threads  # reused, not a new thread


async def test_a_request_cancelled_while_waiting_does_not_lose_the_thread():
    app, seen, running, release = thread_recorder()
    pool = RequestThreadPool(app, size=1)
    first = asyncio.create_task(pool(http_scope("/"), None, None))
    await asyncio.sleep(0.02)
    waiting = asyncio.create_task(pool(http_scope("/"), None, None))
    await asyncio.sleep(0.02)
    waiting.cancel()
    release.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(pool(http_scope("/"), None, None), timeout=2)
    assert len(seen) == 2


async def test_websockets_pass_through_untouched():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    await RequestThreadPool(app, size=1)({"type": "websocket"}, None, None)
    assert seen == ["websocket"]
