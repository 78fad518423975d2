"""How HTTP requests reach Django's sync code under the ASGI server.

Two costs dominated a webhook burst (profiled with py-spy on the uvicorn workers):

1. Django's ASGI handler starts a fresh thread for every request and joins it
   afterwards. `RequestThreadPool` leases each request a long-lived thread
   instead, keeping Django's guarantee (one request's sync code on one thread,
   requests in parallel on different threads) without the churn.
2. Django's ASGI handler crosses between the event loop and that thread four
   times per request (request_started, the view, request_finished, closing the
   response), each a GIL hand-off. `SyncHTTP` serves a path prefix through
   Django's WSGI handler in one crossing: the whole request, signals and
   middleware included, runs in the leased thread, and the response is sent
   from the loop. It buffers the response, so it is for short answers only:
   the webhooks (`/hooks/`), which providers send in bursts and which must be
   acknowledged fast. Pages keep Django's ASGI handler.

Measured on the 2-core machine (bench/ingest.py, web tier alone, C=32): 382
webhooks/s with Django's handler as is, about 450 with leased threads, and
the figures in bench/README.md with both.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from asgiref.wsgi import WsgiToAsgiInstance
from django.core.handlers.wsgi import WSGIHandler


class RequestThreadPool:
    """ASGI middleware: each HTTP request's sync code runs on a thread leased from a pool."""

    def __init__(self, app, *, size: int):
        if size < 1:
            raise ValueError("The request thread pool needs at least one thread.")
        self.app = app
        self.size = size
        self._idle: list[ThreadPoolExecutor] = []
        self._created = 0
        self._waiters: deque[asyncio.Future] = deque()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        executor = await self._lease()
        try:
            # With an executor, asgiref uses it for every thread-sensitive call
            # of this request, Django's own inner context included, and leaves
            # it running on exit.
            async with ThreadSensitiveContext(executor=executor):
                return await self.app(scope, receive, send)
        finally:
            self._release(executor)

    async def _lease(self) -> ThreadPoolExecutor:
        if self._idle:
            return self._idle.pop()
        if self._created < self.size:
            self._created += 1
            # One worker: the sync calls of a request run in order on one thread.
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Cancelled after being handed a thread: pass it on, not lose it.
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())
            raise

    def _release(self, executor: ThreadPoolExecutor) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(executor)
                return
        self._idle.append(executor)


class SyncHTTP:
    """ASGI app: Django's WSGI handler for paths under `prefix`, `app` for the rest."""

    def __init__(self, app, *, prefix: str, max_body_in_memory: int = 2_621_440):
        self.app = app
        self.prefix = prefix
        self.max_body_in_memory = max_body_in_memory
        self.wsgi = WSGIHandler()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        with SpooledTemporaryFile(max_size=self.max_body_in_memory) as body:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the provider gave up; it will send again
                body.write(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body.seek(0)
            # thread_sensitive: the leased thread of RequestThreadPool, where
            # this thread's database connection lives.
            status, headers, content = await sync_to_async(self._respond)(scope, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _respond(self, scope, body) -> tuple[int, list, bytes]:
        environ = _environ(scope, body)
        started = {}

        def start_response(status, response_headers, exc_info=None):
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [
                (name.lower().encode("latin1"), value.encode("latin1")) for name, value in response_headers
            ]

        response = self.wsgi(environ, start_response)
        try:
            content = b"".join(response)
        finally:
            # Django sends request_finished (connections closed or returned) here.
            close = getattr(response, "close", None)
            if close is not None:
                close()
        return started["status"], started["headers"], content


def _environ(scope, body) -> dict:
    # asgiref's translation of an ASGI scope to a WSGI environ, headers and
    # SCRIPT_NAME included; it reads nothing but the scope and the body.
    instance = WsgiToAsgiInstance(None)
    instance.scope = scope
    return instance.build_environ(scope, body)
