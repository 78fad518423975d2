"""The scale profile's load balancer (deploy/nginx/scale.conf), run by Debian's nginx.

docker-compose.scale.yml puts several web replicas behind nginx. No Docker engine
runs here, so the test runs the same nginx configuration in front of two real
uvicorn processes on the test database and the test Redis, with only the
upstream's `server web:8000` line replaced by the two local addresses (Docker's
DNS would answer with the replicas' addresses): requests spread over both
replicas, an agent's WebSocket goes through nginx's upgrade and gets the pushes
of messages that came in through either replica, and a replica that dies is
skipped.
"""

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from channels_adapters.base import hmac_sha256_hex
from channels_adapters.models import Channel
from conversations.models import Message
from helpdesk import roles
from tests.browser.conftest import _free_port, asgi_process
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SCALE_CONF = ROOT / "deploy" / "nginx" / "scale.conf"
UPSTREAM_LINE = re.compile(r"^\s*server web:8000 (?P<options>[^;]*);", re.MULTILINE)

pytestmark = pytest.mark.django_db(transaction=True)


def _nginx_conf(*, tmp: Path, listen: int, replicas: list[int]) -> Path:
    conf = SCALE_CONF.read_text()
    found = UPSTREAM_LINE.search(conf)
    assert found, "deploy/nginx/scale.conf no longer names the web service as `server web:8000 ...;`"
    servers = "".join(f"    server 127.0.0.1:{port} {found['options']};\n" for port in replicas)
    conf = UPSTREAM_LINE.sub(servers.rstrip("\n"), conf).replace("listen 80;", f"listen 127.0.0.1:{listen};")
    (tmp / "scale.conf").write_text(conf)
    # The packaged nginx.conf's frame, writable paths for a non-root nginx, and an
    # access log that names the replica each request went to.
    main = tmp / "nginx.conf"
    main.write_text(
        f"""
        pid {tmp}/nginx.pid;
        error_log {tmp}/error.log warn;
        events {{ worker_connections 256; }}
        http {{
            client_body_temp_path {tmp}/body;
            proxy_temp_path {tmp}/proxy;
            fastcgi_temp_path {tmp}/fastcgi;
            uwsgi_temp_path {tmp}/uwsgi;
            scgi_temp_path {tmp}/scgi;
            log_format upstream '$request_method $uri $status $upstream_addr';
            access_log {tmp}/access.log upstream;
            include {tmp}/scale.conf;
        }}
        """
    )
    return main


@pytest.fixture
def balanced(live_worker, tmp_path):
    """Two web replicas behind the scale profile's nginx; yields (base URL, {port: process}, access log)."""
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx-light)")
    # The replicas as the scale profile's web service: one proxy hop in front.
    env = {"HELPDESK_TRUSTED_PROXY_COUNT": "1"}
    processes = []
    with ExitStack() as stack:
        bases = [stack.enter_context(asgi_process(started=processes, **env)) for _ in range(2)]
        ports = [int(base.rsplit(":", 1)[1]) for base in bases]
        listen = _free_port()
        conf = _nginx_conf(tmp=tmp_path, listen=listen, replicas=ports)
        checked = subprocess.run(
            [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr
        nginx = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"])
        stack.callback(lambda: (nginx.send_signal(signal.SIGQUIT), nginx.wait(timeout=10)))
        base = f"http://127.0.0.1:{listen}"
        wait_for(lambda: _answers(base + "/healthz"), timeout=10)
        yield base, dict(zip(ports, processes, strict=True)), tmp_path / "access.log"


def _answers(url):
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _replicas_used(log: Path) -> dict[str, int]:
    used: dict[str, int] = {}
    for line in log.read_text().splitlines():
        upstream = line.rsplit(" ", 1)[-1]
        used[upstream] = used.get(upstream, 0) + 1
    return used


def _signed_webhook(base: str, channel: Channel, *, external_id: str, text: str) -> httpx.Response:
    body = json.dumps({"external_id": external_id, "from": {"phone": "+14155550101"}, "text": text}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Signature": "sha256=" + hmac_sha256_hex("lb-secret", body),
    }
    return httpx.post(base + channel.webhook_path, content=body, headers=headers, timeout=10)


@pytest.fixture
def api_channel():
    return Channel.objects.create(kind="api", name="LB", credentials={"secret": "lb-secret"})


def test_requests_through_the_balancer_spread_over_every_replica(balanced, api_channel):
    base, ports, log = balanced
    for n in range(6):
        assert _signed_webhook(base, api_channel, external_id=f"lb-{n}", text=f"hello {n}").status_code == 200
    wait_for(lambda: Message.objects.filter(channel=api_channel).count() == 6)
    time.sleep(0.2)  # nginx writes the access log line after the response
    used = _replicas_used(log)
    assert set(used) >= {f"127.0.0.1:{port}" for port in ports}, used


def test_an_agents_socket_goes_through_the_balancer_and_gets_the_pushes(balanced, api_channel):
    import websockets

    base, ports, log = balanced
    agent = get_user_model().objects.create_user("lb-supervisor")
    agent.groups.add(Group.objects.get_or_create(name=roles.SUPERVISORS)[0])
    client = Client()
    client.force_login(agent)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    ws_url = base.replace("http://", "ws://") + "/ws/agent/"

    async def scenario():
        headers = {"Cookie": cookie, "Origin": base}
        async with websockets.connect(ws_url, additional_headers=headers) as socket:
            # Webhooks go round robin: some land on the replica that does not hold the socket.
            for n in range(4):
                response = await asyncio.to_thread(
                    _signed_webhook, base, api_channel, external_id=f"ws-{n}", text=f"socket {n}"
                )
                assert response.status_code == 200
            seen = set()
            deadline = time.monotonic() + 15
            while len(seen) < 4 and time.monotonic() < deadline:
                raw = await asyncio.wait_for(socket.recv(), timeout=deadline - time.monotonic())
                frame = json.loads(raw)
                if frame.get("event") == "message.created":
                    seen.add(frame["data"]["message"]["body"])
            return seen

    assert asyncio.run(scenario()) == {f"socket {n}" for n in range(4)}
    time.sleep(0.2)  # the socket's access log line is written when it closes
    used = _replicas_used(log)
    assert "GET /ws/agent/ 101" in log.read_text(), "the socket did not go through nginx's upgrade"
    assert len([u for u in used if u != "-"]) == 2, used


def test_a_replica_that_dies_is_skipped(balanced, api_channel):
    base, replicas, log = balanced
    dead_port, dead = next(iter(replicas.items()))
    dead.kill()
    dead.wait(timeout=10)
    for n in range(6):
        assert (
            _signed_webhook(base, api_channel, external_id=f"dead-{n}", text=f"still {n}").status_code == 200
        )
    wait_for(lambda: Message.objects.filter(channel=api_channel).count() == 6)
    time.sleep(0.2)
    # Every answer came from the live replica: nginx found the dead one refusing and went on.
    [live_port] = [port for port in replicas if port != dead_port]
    answered = [line for line in log.read_text().splitlines() if line.startswith("POST ")]
    assert len(answered) == 6, answered
    assert all(line.endswith(f"127.0.0.1:{live_port}") for line in answered), answered
