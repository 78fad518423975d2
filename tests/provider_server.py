"""A local HTTP server that plays a provider's API for outbound tests.

It records every request (method, path, headers, body) and answers from a
script of responses, the last one repeating, so a test can say "503, then 200"
and check what our real client sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    status: int = 200
    body: object = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    # Seconds before answering: the request is recorded first, so a test can
    # kill the sender while the provider holds its message (a crash mid-send).
    delay: float = 0.0

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class ProviderServer:
    def __init__(self):
        self.requests: list[Recorded] = []
        self.replies: list[Reply] = [Reply()]
        self.routes: dict[str, list[Reply]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                server.requests.append(
                    Recorded(
                        self.command,
                        url.path,
                        {k: v[0] for k, v in parse_qs(url.query).items()},
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                reply = server._next_reply(url.path)
                if reply.delay:
                    threading.Event().wait(reply.delay)
                payload = reply.encoded()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args):
                pass  # requests are recorded in server.requests; no access log on stderr

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _next_reply(self, path: str) -> Reply:
        for prefix, replies in self.routes.items():
            if path.startswith(prefix):
                return replies.pop(0) if len(replies) > 1 else replies[0]
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def script(self, *replies: Reply, path: str | None = None):
        """Answer with these replies in turn; the last one repeats."""
        if path is None:
            self.replies = list(replies)
        else:
            self.routes[path] = list(replies)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
