"""A visitor's socket: the chat both ways in real time, typing, reads.

The first frame must be the visitor token ({"action": "auth"}): a token never
sits in a URL (server logs, proxies). The socket then joins the visitor's
group only: what reaches it is what the adapter and the visitor's own other
tabs send there, never an agent's inbox event.
"""

from __future__ import annotations

import asyncio
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import translation

from channels_adapters.models import ChannelKind
from channels_adapters.selectors import channel_get_active
from channels_adapters.webchat import selectors
from channels_adapters.webchat.presence import presence_touch
from channels_adapters.webchat.services import (
    WidgetRefused,
    visitor_authenticate,
    visitor_language,
    visitor_message_send,
    visitor_read,
    visitor_typing,
)

AUTH_TIMEOUT_SECONDS = 10


def _off_loop(func):
    """Run `func` (sync, one self-contained unit: its own transaction if any) on the
    event loop's thread pool, not on the one thread every socket of the process shares.

    Under uvicorn, a thread-sensitive call (database_sync_to_async's default) from a
    socket runs on a single thread per process: one visitor's message waited for
    every other visitor's (bench/webchat.py measured that thread busy most of the time
    at 25 messages/s a process). A socket's own frames are still handled one after
    the other (the consumer awaits each), so one visitor's messages keep their order.
    """
    return database_sync_to_async(func, thread_sensitive=False)


# Presence is refreshed at most this often from a socket's traffic.
_TOUCH_EVERY_SECONDS = 30


def _channel(key: str):
    channel = channel_get_active(key=key)
    return channel if channel is not None and channel.kind == ChannelKind.WEBCHAT else None


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


class WidgetConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.session = None
        self.channel = await _off_loop(_channel)(self.scope["url_route"]["kwargs"]["key"])
        if self.channel is None:
            await self.close(code=4404)
            return
        await self.accept()
        self.touched = 0.0
        self.auth_timer = asyncio.get_running_loop().call_later(AUTH_TIMEOUT_SECONDS, self._auth_timeout)

    def _auth_timeout(self):
        if self.session is None:
            asyncio.ensure_future(self.close(code=4401))

    async def disconnect(self, code):
        timer = getattr(self, "auth_timer", None)
        if timer is not None:
            timer.cancel()
        if getattr(self, "session", None) is not None:
            await self.channel_layer.group_discard(self.session.visitor.group, self.channel_name)
            # Still "present" for the offline grace period: a reload is not leaving.
            await _off_loop(presence_touch)(address=self.session.visitor.address)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        if self.session is None and content.get("action") == "auth":
            self.language = await _off_loop(visitor_language)(self.channel, str(content.get("token") or ""))
        with translation.override(getattr(self, "language", None) or "en"):
            await self._receive(content)

    async def _receive(self, content):
        action = content.get("action")
        if self.session is None:
            if action == "auth":
                await self._auth(content)
            else:
                await self.close(code=4401)
            return
        if self.session.identity is None:
            # The visitor may have become a customer since the socket opened (a pre-chat
            # form or a first message sent over HTTP): typing and reads need the identity.
            self.session.identity = await _off_loop(selectors.visitor_identity)(visitor=self.session.visitor)
        try:
            if action == "message":
                await self._message(content)
            elif action == "typing":
                await _off_loop(visitor_typing)(
                    session=self.session, channel=self.channel, typing=bool(content.get("typing", True))
                )
            elif action == "read" and isinstance(content.get("up_to"), int):
                await _off_loop(visitor_read)(
                    session=self.session, channel=self.channel, up_to=content["up_to"]
                )
            elif action == "page":
                await self._touch(page={"url": content.get("url"), "title": content.get("title")}, force=True)
            elif action == "ping":
                await self._touch()
                await self.send_json({"event": "pong", "data": {}})
        except WidgetRefused as exc:
            await self.send_json(
                {
                    "event": "error",
                    "data": {
                        "code": exc.code,
                        "message": exc.message,
                        "client_id": content.get("client_id"),
                        "retry_after": exc.retry_after,
                    },
                }
            )

    async def _auth(self, content):
        try:
            session = await _off_loop(visitor_authenticate)(
                channel=self.channel, token=str(content.get("token") or "")
            )
        except WidgetRefused as exc:
            await self.send_json({"event": "error", "data": {"code": exc.code, "message": exc.message}})
            await self.close(code=4403 if exc.status == 403 else 4401)
            return
        self.session = session
        self.auth_timer.cancel()
        await self.channel_layer.group_add(session.visitor.group, self.channel_name)
        await self._touch(force=True)
        case = await _off_loop(selectors.visitor_case)(channel=self.channel, identity=session.identity)
        await self.send_json(
            {
                "event": "ready",
                "data": {"verified": session.visitor.verified, "case": selectors.case_json(case)},
            }
        )

    async def _message(self, content):
        client = self.scope.get("client") or ("", 0)
        message, created = await _off_loop(visitor_message_send)(
            session=self.session,
            channel=self.channel,
            client_id=str(content.get("client_id") or ""),
            text=str(content.get("text") or ""),
            page=content.get("page") if isinstance(content.get("page"), dict) else None,
            user_agent=_header(self.scope, b"user-agent"),
            time_zone=str(content.get("tz") or ""),
            ip=client[0] or "",
        )
        if self.session.identity is None:
            self.session.identity = message.identity
        self.touched = time.monotonic()
        if not created:
            # A resend of a message we have: no push goes out for it, so answer here.
            await self.send_json(
                {
                    "event": "message.created",
                    "data": {"message": selectors.message_json(message, visitor=self.session.visitor)},
                }
            )

    async def _touch(self, *, page=None, force=False):
        now = time.monotonic()
        if force or now - self.touched > _TOUCH_EVERY_SECONDS:
            self.touched = now
            await _off_loop(presence_touch)(address=self.session.visitor.address, page=page)

    async def inbox_events(self, batch):
        # A worker's pushes made while its previous send was under way, in order.
        for event in batch["events"]:
            await self.inbox_event(event)

    async def inbox_event(self, event):
        await self.send_json({"event": event["event"], "data": event["data"]})
