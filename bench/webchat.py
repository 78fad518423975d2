"""Web chat benchmark: thousands of visitor sockets on the real ASGI server, messages both ways.

Starts uvicorn (several workers, the channels_redis layer) and a Celery worker
(it sends the agents' replies) on PostgreSQL + Redis, creates N visitor
sessions over HTTP (`POST /widget/<key>/api/session`), opens N visitor
WebSockets (`ws/widget/<key>/`, auth frame, `ready`) from an asyncio client on
the same machine and one logged-in agent socket (`ws/agent/`). Then, for a
while, S of the visitors each send a message every few seconds (a steady
offered rate) and agent replies are created with `send_reply` from this
process, one every so often, on the senders' cases. Printed:

- the RSS of the server processes (uvicorn and its children) before the
  sockets open and with all N open: KiB per connected visitor;
- visitor message -> agent socket latency (`message.created` on `ws/agent/`,
  matched by a marker in the text) p50/p95/p99, and the offered rate;
- agent reply -> visitor socket latency (from just before `send_reply` until
  the visitor's socket has the `message.created` with that text) p50/p95/p99;
- counts: messages sent, stored, received by the agent and echoed to the
  visitor; replies created, received, received by the wrong visitor
  (0 lost, 0 doubled, 0 misrouted expected).

    make bench-webchat                                  # defaults below
    .venv/bin/python bench/webchat.py --visitors 2000 --senders 200 --duration 60

Environment: DATABASE_URL (any database on the server; the benchmark creates
its own `helpdesk_bench_webchat` next to it) and REDIS_URL (a db it may flush).
Every visitor comes from 127.0.0.1, so the per-IP session and message limits
are raised for the server (the per-visitor limits keep their defaults).
BENCH_LOG_LEVEL (default ERROR) is the servers' LOG_LEVEL: INFO shows
channels_redis's "over capacity" drops.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

from harness import (
    django_bench_setup,
    free_port,
    percentile,
    processes_stop,
    wait_healthy,
    web_start,
    worker_start,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SITE = "https://shop.example"


def rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants (KiB), from /proc."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(p) for p in f.read().split()]
    except OSError:
        return total
    return total + sum(rss_kib(child) for child in children)


def process_tree(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(p) for p in f.read().split()]
    except OSError:
        return [pid]
    return [pid, *(p for child in children for p in process_tree(child))]


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def tcp_connections_to(pid: int, port: int) -> int:
    """Established TCP connections of a process to `port` (its sockets' inodes in /proc/net/tcp)."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        count = 0
        for table in ("tcp", "tcp6"):
            with open(f"/proc/{pid}/net/{table}") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                    if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                        count += 1
        return count
    except OSError:
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants, in seconds."""
    total = 0.0
    # This process's children are the servers: counted apart.
    for one in [pid] if pid == os.getpid() else process_tree(pid):
        try:
            with open(f"/proc/{one}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def postgres_backends(db_name: str) -> list[int]:
    """The PostgreSQL backends serving the bench's database (their title names it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f" {db_name} ".encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def server_snapshot(web_pid: int, redis_port: int) -> dict:
    pids = process_tree(web_pid)
    return {
        "rss_kib": rss_kib(web_pid),
        "open_fds_per_process": {pid: open_fds(pid) for pid in pids},
        "redis_connections_per_process": {pid: tcp_connections_to(pid, redis_port) for pid in pids},
    }


def nofile_raise() -> int:
    """Sockets are file descriptors: lift the soft limit to the hard one (inherited by the servers)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def sessions_create(base, key, count, concurrency) -> tuple[list[str], dict]:
    """One visitor token per visitor, as the frame gets it on page load."""
    import httpx

    tokens, statuses = [None] * count, {}
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30, trust_env=False) as client:

        async def one(n):
            async with semaphore:
                response = await client.post(
                    f"/widget/{key}/api/session",
                    json={"origin": SITE, "page": {"url": f"{SITE}/p/{n}", "title": "Shop"}},
                    headers={"Origin": base},
                )
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    tokens[n] = response.json()["token"]

        await asyncio.gather(*(one(n) for n in range(count)))
    return tokens, statuses


class Run:
    """What the client saw: send and receive times by marker, counts, errors."""

    def __init__(self):
        self.sent: dict[str, float] = {}  # visitor message marker -> perf_counter at send
        self.at_agent: dict[str, float] = {}
        self.at_agent_twice = 0
        self.echoed: set[str] = set()
        self.echoed_twice = 0
        self.replies: dict[str, tuple[int, float]] = {}  # reply marker -> (visitor, t before send_reply)
        self.reply_received: dict[str, float] = {}
        self.reply_received_twice = 0
        self.reply_misrouted = 0
        self.case_of: dict[int, int] = {}  # visitor -> case id (from its echo)
        self.server_errors: dict[str, int] = {}
        self.closed_early: dict[str, int] = {}
        self.connect_failed: dict[str, int] = {}
        self.connect_seconds: list[float] = []
        self.reply_failed: dict[str, int] = {}
        self.loop_lag: list[float] = []
        self.lock = threading.Lock()


async def visitor_connect(run, ws_url, origin, token, semaphore, ready_timeout):
    from websockets.asyncio.client import connect

    async with semaphore:
        started = time.perf_counter()
        try:
            ws = await connect(ws_url, origin=origin, proxy=None, open_timeout=30)
            await ws.send(json.dumps({"action": "auth", "token": token}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), ready_timeout))
                if frame.get("event") == "ready":
                    break
        except Exception as exc:  # noqa: BLE001 - counted and reported
            name = type(exc).__name__
            run.connect_failed[name] = run.connect_failed.get(name, 0) + 1
            return None
        run.connect_seconds.append(time.perf_counter() - started)
        return ws


async def visitor_listen(run, n, ws):
    """Echoes of the visitor's own messages, agents' replies; the first copy's time is kept."""
    try:
        async for raw in ws:
            now = time.perf_counter()
            if '"message.created"' not in raw:
                if '"error"' in raw:
                    code = json.loads(raw)["data"].get("code") or "?"
                    run.server_errors[code] = run.server_errors.get(code, 0) + 1
                continue
            data = json.loads(raw)["data"]
            text = data["message"]["text"]
            marker = text.split()[-1] if text else ""
            if marker.startswith("r") and marker in run.replies:
                if run.replies[marker][0] != n:
                    run.reply_misrouted += 1
                elif marker in run.reply_received:
                    run.reply_received_twice += 1
                else:
                    run.reply_received[marker] = now
            elif marker.startswith("v"):
                if marker in run.echoed:
                    run.echoed_twice += 1
                run.echoed.add(marker)
                if data.get("case"):
                    run.case_of[n] = data["case"]["id"]
    except Exception as exc:  # noqa: BLE001 - a socket the server closed under us is counted
        name = type(exc).__name__
        run.closed_early[name] = run.closed_early.get(name, 0) + 1


async def agent_listen(run, ws):
    async for raw in ws:
        now = time.perf_counter()
        if '"message.created"' not in raw:
            continue
        body = json.loads(raw)["data"]["message"]["body"]
        marker = body.split()[-1] if body else ""
        if not marker.startswith("v"):
            continue
        if marker in run.at_agent:
            run.at_agent_twice += 1
        else:
            run.at_agent[marker] = now


async def visitor_send_steadily(run, n, ws, interval, until):
    """One message every `interval` seconds from a random phase: the senders together offer a steady rate."""
    await asyncio.sleep(random.random() * interval)
    seq = 0
    next_at = time.perf_counter()
    while next_at < until:
        marker = f"v{n}x{seq}"
        run.sent[marker] = time.perf_counter()
        try:
            await ws.send(
                json.dumps(
                    {"action": "message", "client_id": f"b{n}-{seq}", "text": f"Bench message {marker}"}
                )
            )
        except Exception:  # noqa: BLE001 - the socket closed under us: counted by its listener
            del run.sent[marker]
            return
        seq += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


def replies_steadily(run, agent, senders, rate, until, stop):
    """Agent replies on the senders' cases, created as the inbox does (send_reply; the worker sends)."""
    from django.db import connection

    from conversations.models import Case
    from conversations.services import send_reply

    interval, n = 1.0 / rate, 0
    next_at = time.perf_counter()
    try:
        while time.perf_counter() < until and not stop.is_set():
            with_case = [v for v in senders if v in run.case_of]
            if with_case:
                visitor = random.choice(with_case)
                case = Case.objects.select_related("thread").get(pk=run.case_of[visitor])
                marker = f"r{n}"
                run.replies[marker] = (visitor, time.perf_counter())
                n += 1
                try:
                    send_reply(case=case, author_user=agent, body=f"Bench reply {marker}")
                except Exception as exc:  # noqa: BLE001 - counted and reported (the agent would see an error)
                    del run.replies[marker]
                    name = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                    run.reply_failed[name] = run.reply_failed.get(name, 0) + 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        connection.close()


async def loop_lag(run, every=0.05):
    """How late this client's event loop wakes up: a late client inflates every latency it measures."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(every)
        run.loop_lag.append(time.perf_counter() - started - every)


def latency_ms(pairs) -> dict:
    ms = [v * 1000 for v in pairs]
    if not ms:
        return {"count": 0}
    return {
        "count": len(ms),
        "p50": round(percentile(ms, 50), 1),
        "p95": round(percentile(ms, 95), 1),
        "p99": round(percentile(ms, 99), 1),
        "max": round(max(ms), 1),
        "mean": round(statistics.mean(ms), 1),
    }


async def load(args, *, port, channel_key, agent_cookie, agent, pids, redis_port) -> dict:
    web_pid = pids["web (uvicorn and its workers)"]
    from websockets.asyncio.client import connect

    base = f"http://127.0.0.1:{port}"
    ws_base = f"ws://127.0.0.1:{port}"
    run = Run()
    result = {}

    # Warm-up: a few visitors connect, write and leave, so imports and pools made
    # on first use are not counted as the sockets' memory.
    warm_tokens, _ = await sessions_create(base, channel_key, args.warmup, 8)
    semaphore = asyncio.Semaphore(args.connect_concurrency)
    for token in warm_tokens:
        ws = await visitor_connect(run, f"{ws_base}/ws/widget/{channel_key}/", base, token, semaphore, 30)
        if ws is not None:
            await ws.send(json.dumps({"action": "message", "client_id": "warm", "text": "warm-up"}))
            await asyncio.sleep(0.05)
            await ws.close()
    run.connect_seconds.clear()

    started = time.perf_counter()
    tokens, statuses = await sessions_create(base, channel_key, args.visitors, args.session_concurrency)
    result["sessions"] = {
        "http_statuses": statuses,
        "per_second": round(args.visitors / (time.perf_counter() - started), 1),
    }

    agent_ws = await connect(
        f"{ws_base}/ws/agent/", origin=base, proxy=None, additional_headers={"Cookie": agent_cookie}
    )
    agent_task = asyncio.create_task(agent_listen(run, agent_ws))
    await asyncio.sleep(2)
    before = server_snapshot(web_pid, redis_port)

    started = time.perf_counter()
    sockets = await asyncio.gather(
        *(
            visitor_connect(run, f"{ws_base}/ws/widget/{channel_key}/", base, t, semaphore, 30)
            for t in tokens
            if t
        )
    )
    connect_elapsed = time.perf_counter() - started
    connected = {n: ws for n, ws in enumerate(sockets) if ws is not None}
    listeners = [asyncio.create_task(visitor_listen(run, n, ws)) for n, ws in connected.items()]
    await asyncio.sleep(3)
    with_all = server_snapshot(web_pid, redis_port)
    result["connect"] = {
        "visitors_asked": args.visitors,
        "connected": len(connected),
        "failed": run.connect_failed,
        "seconds": round(connect_elapsed, 1),
        "per_second": round(len(connected) / connect_elapsed, 1),
        "connect_and_ready_ms": latency_ms(run.connect_seconds),
    }
    result["server_before_connect"] = before
    result["server_all_connected"] = with_all
    result["rss_kib_per_connected_visitor"] = round(
        (with_all["rss_kib"] - before["rss_kib"]) / max(1, len(connected)), 1
    )

    # Steady traffic: S senders, replies alongside.
    senders = list(connected)[: args.senders]
    lag_task = asyncio.create_task(loop_lag(run))
    backends = postgres_backends("helpdesk_bench_webchat")
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    cpu_before["PostgreSQL backends of the bench db"] = sum(cpu_seconds(pid) for pid in backends)
    until = time.perf_counter() + args.duration
    stop = threading.Event()
    replier = threading.Thread(
        target=replies_steadily, args=(run, agent, senders, args.reply_rate, until, stop), daemon=True
    )
    loop_started = time.perf_counter()
    replier.start()
    await asyncio.gather(
        *(visitor_send_steadily(run, n, connected[n], args.interval, until) for n in senders)
    )
    send_elapsed = time.perf_counter() - loop_started
    during = server_snapshot(web_pid, redis_port)
    cpu_used = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    cpu_used["PostgreSQL backends of the bench db"] = (
        sum(cpu_seconds(pid) for pid in backends) - cpu_before["PostgreSQL backends of the bench db"]
    )
    lag_task.cancel()
    result["cpu_share_during_traffic"] = {
        name: f"{100 * used / send_elapsed:.0f}% of one core" for name, used in cpu_used.items()
    }
    result["client_loop_lag_ms"] = latency_ms(run.loop_lag)
    await asyncio.to_thread(replier.join)

    deadline = time.perf_counter() + args.settle
    while time.perf_counter() < deadline:
        if len(run.at_agent) >= len(run.sent) and len(run.reply_received) >= len(run.replies):
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(1)  # late doubles, if any

    result["traffic"] = {
        "senders": len(senders),
        "interval_s": args.interval,
        "offered_messages_per_second": round(len(senders) / args.interval, 1),
        "sent": len(run.sent),
        "sent_per_second": round(len(run.sent) / send_elapsed, 1),
        "replies_per_second": args.reply_rate,
    }
    result["server_after_traffic"] = during
    still_open = sum(1 for task in listeners if not task.done())
    result["visitor_to_agent_ms"] = latency_ms(
        [run.at_agent[m] - t for m, t in run.sent.items() if m in run.at_agent]
    )
    result["reply_to_visitor_ms"] = latency_ms(
        [run.reply_received[m] - t for m, (_, t) in run.replies.items() if m in run.reply_received]
    )
    missing = sorted((t, m) for m, t in run.sent.items() if m not in run.at_agent)
    result["not_at_agent_first"] = [f"{m} sent at +{t - loop_started:.1f} s" for t, m in missing[:12]]
    result["agent_socket_closed_early"] = agent_task.done()
    result["visitor_client"] = {
        "sockets_still_open": still_open,
        "closed_early": run.closed_early,
        "error_events": run.server_errors,
    }
    result["_run"] = run

    await agent_ws.close()
    agent_task.cancel()
    for start in range(0, len(connected), 500):
        await asyncio.gather(
            *(ws.close() for ws in list(connected.values())[start : start + 500]), return_exceptions=True
        )
    for task in listeners:
        task.cancel()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=2000, help="visitor sockets held open")
    parser.add_argument("--senders", type=int, default=200, help="of them, how many write")
    parser.add_argument("--interval", type=float, default=4.0, help="seconds between a sender's messages")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of steady traffic")
    parser.add_argument("--reply-rate", type=float, default=5.0, help="agent replies per second")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument(
        "--worker-nice", type=int, default=10, help="CPU priority of the Celery worker (as bench/ingest.py)"
    )
    parser.add_argument("--ws", default="auto", help="uvicorn's WebSocket implementation (--ws)")
    parser.add_argument(
        "--no-deflate",
        action="store_true",
        help="uvicorn without permessage-deflate (browsers ask for it; it costs memory per socket)",
    )
    parser.add_argument("--session-concurrency", type=int, default=16)
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds allowed to receive the last")
    args = parser.parse_args()

    nofile = nofile_raise()
    big = "1000000"
    env = django_bench_setup(
        db_name="helpdesk_bench_webchat",
        redis_default="redis://127.0.0.1:6379/9",
        DATABASE_POOL_MAX_SIZE=os.environ.get("DATABASE_POOL_MAX_SIZE", "12"),
        HELPDESK_WEBCHAT_SESSIONS_PER_MINUTE_PER_IP=os.environ.get(
            "HELPDESK_WEBCHAT_SESSIONS_PER_MINUTE_PER_IP", big
        ),
        HELPDESK_WEBCHAT_MESSAGES_PER_MINUTE_PER_IP=os.environ.get(
            "HELPDESK_WEBCHAT_MESSAGES_PER_MINUTE_PER_IP", big
        ),
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "ERROR"),
    )
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from channels_adapters.models import Channel
    from conversations.models import Direction, Message
    from helpdesk import roles

    channel = Channel.objects.create(
        kind="webchat",
        name="Bench web chat",
        credentials={"identity_secret": "bench-identity-secret"},
        settings={"allowed_origins": [SITE]},
    )
    agent = get_user_model().objects.create_user("bench-agent", first_name="Bench")
    agent.groups.add(Group.objects.get_or_create(name=roles.AGENTS)[0])
    client = Client()
    client.force_login(agent)
    agent_cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    redis_port = redis.Redis.from_url(env["REDIS_URL"]).connection_pool.connection_kwargs.get("port", 6379)

    port = free_port()
    uvicorn_args = ("--ws", args.ws, "--backlog", "4096", "--timeout-graceful-shutdown", "10")
    if args.no_deflate:
        uvicorn_args += ("--ws-per-message-deflate", "false")
    web = web_start(env=env, port=port, workers=args.web_workers, extra_args=uvicorn_args)
    worker = worker_start(env=env, concurrency=args.celery_concurrency, nice=args.worker_nice)
    try:
        if not wait_healthy(port=port, timeout=30):
            print("the web server did not start", file=sys.stderr)
            return 1
        time.sleep(1)
        result = asyncio.run(
            load(
                args,
                port=port,
                channel_key=channel.key,
                agent_cookie=agent_cookie,
                agent=agent,
                pids={
                    "web (uvicorn and its workers)": web.pid,
                    "Celery worker": worker.pid,
                    "bench client (this process)": os.getpid(),
                },
                redis_port=redis_port,
            )
        )
        run = result.pop("_run")
        incoming = Message.objects.filter(channel=channel, direction=Direction.IN)
        bodies = [b for b in incoming.values_list("body", flat=True) if "Bench message" in b]
        stored = {b.split()[-1] for b in bodies}
        outgoing = Message.objects.filter(
            channel=channel, direction=Direction.OUT, body__startswith="Bench reply"
        )
        sent = set(run.sent)
        result["count_check"] = {
            "messages_sent": len(sent),
            "messages_stored": len(bodies),
            "lost": len(sent - stored),
            "doubled": len(bodies) - len(stored),
            "received_by_agent": len(run.at_agent),
            "received_by_agent_twice": run.at_agent_twice,
            "echoed_to_visitor": len(run.echoed & sent),
            "echoed_twice": run.echoed_twice,
            "replies_created": len(run.replies),
            "replies_failed": run.reply_failed,
            "replies_stored": outgoing.count(),
            "replies_statuses": dict(
                sorted(
                    {
                        s: outgoing.filter(status=s).count()
                        for s in set(outgoing.values_list("status", flat=True))
                    }.items()
                )
            ),
            "replies_received": len(run.reply_received),
            "replies_received_twice": run.reply_received_twice,
            "replies_misrouted": run.reply_misrouted,
        }
        result["setup"] = {
            "web_workers": args.web_workers,
            "uvicorn_args": list(uvicorn_args),
            "celery_concurrency": args.celery_concurrency,
            "worker_nice": args.worker_nice,
            "database_pool_max_size": settings.DATABASES["default"].get("OPTIONS", {}).get("pool"),
            "nofile_limit": nofile,
            "load_average_at_end": os.getloadavg(),
        }
        counts = result["count_check"]
        ok = (
            counts["lost"] == 0
            and counts["doubled"] == 0
            and counts["received_by_agent"] == counts["messages_sent"]
            and counts["received_by_agent_twice"] == 0
            and counts["replies_received"] == counts["replies_created"]
            and not counts["replies_failed"]
            and counts["replies_received_twice"] == 0
            and counts["replies_misrouted"] == 0
            and result["connect"]["connected"] == args.visitors
        )
        print(json.dumps(result, indent=2, default=str))
        v2a, r2v = result["visitor_to_agent_ms"], result["reply_to_visitor_ms"]
        print(
            f"\n{result['connect']['connected']} of {args.visitors} visitors connected, "
            f"{result['rss_kib_per_connected_visitor']} KiB RSS per visitor "
            f"({before_after(result)}); "
            f"{result['traffic']['offered_messages_per_second']} msg/s offered by "
            f"{result['traffic']['senders']} "
            f"senders: visitor -> agent p50 {v2a.get('p50')} ms, p95 {v2a.get('p95')} ms, "
            f"p99 {v2a.get('p99')} ms; reply -> visitor p50 {r2v.get('p50')} ms, p95 {r2v.get('p95')} ms, "
            f"p99 {r2v.get('p99')} ms; count check {'OK' if ok else 'FAILED'}: "
            f"{counts['messages_stored']} stored of {counts['messages_sent']} sent, "
            f"{counts['received_by_agent']} at the agent, {counts['replies_received']} of "
            f"{counts['replies_created']} replies received"
        )
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / f"webchat-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
            json.dumps(result, indent=2, default=str)
        )
        return 0 if ok else 1
    finally:
        # uvicorn's workers outlive a parent killed after the grace period: stopped by pid too.
        tree = process_tree(web.pid)
        processes_stop([web, worker])
        for pid in tree[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


def before_after(result) -> str:
    before = result["server_before_connect"]["rss_kib"] / 1024
    after = result["server_all_connected"]["rss_kib"] / 1024
    return f"{before:.0f} MiB before, {after:.0f} MiB with all connected"


if __name__ == "__main__":
    sys.exit(main())
