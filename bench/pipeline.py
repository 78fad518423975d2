"""Pipeline benchmark: signed webhooks at a fixed offered rate, timed to the agent's WebSocket.

What a support team feels is not the webhook's answer but the message on an
agent's screen. This bench offers signed API-channel webhooks open loop (one
every 1/rate seconds, whatever the server's answers do), for `--duration`
seconds per rate, while a logged-in agent's socket is subscribed as the inbox
is (`/ws/agent/`). Per rate it prints the webhook latency, the POST -> agent
socket latency (p50/p95/p99), the backlog sampled every second (a backlog that
grows all along means the rate does not hold), how long the rest took once
the load stopped, and the count check: every unique message stored once,
pushed once, 0 lost, 0 doubled.

    make bench-pipeline                                     # 100 msg/s, 60 s
    make bench-pipeline BENCH_ARGS="--rates 100,200,300,500 --duration 60"
    make bench-pipeline BENCH_ARGS="--automation-rules 50"  # with routing rules on every message

Everything shares the machine: load generator, web tier, worker, PostgreSQL, Redis.
Environment: DATABASE_URL (the bench makes `helpdesk_bench_pipeline` next to
it) and REDIS_URL (a db it may flush).
"""

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import (
    api_message_body,
    automation_rules_create,
    bot_articles_create,
    django_bench_setup,
    free_port,
    percentile,
    processes_stop,
    py_spy_start,
    py_spy_summary,
    wait_healthy,
    web_start,
    worker_start,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _Sink(BaseHTTPRequestHandler):
    """The API channel's callback: what the bot or a canned reply sends lands here, answered 200."""

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": "sink"}')

    def log_message(self, *args):
        pass


def ms_summary(values) -> dict:
    ms = [v * 1000 for v in values]
    if not ms:
        return {}
    return {q: round(percentile(ms, n), 1) for q, n in (("p50", 50), ("p95", 95), ("p99", 99))} | {
        "max": round(max(ms), 1)
    }


async def offer(*, url, secret, rate, duration, customers, duplicates, seq_start, agent_ws, redis_client):
    """One rate: open-loop POSTs, the agent socket listening, the backlog sampled every second."""
    import aiohttp
    import websockets

    from channels_adapters.base import hmac_sha256_hex
    from channels_adapters.services import PENDING_KEY

    rng = random.Random(seq_start)
    posted_at: dict[str, float] = {}  # marker -> first POST's start
    webhook_latency, statuses, arrived, twice = [], {}, {}, 0
    backlog: list[tuple[float, int]] = []
    unique, total = 0, int(rate * duration)
    bodies = []
    for i in range(total):
        if bodies and rng.random() < duplicates:
            bodies.append(rng.choice(bodies[-200:]))  # a provider's retry, soon after: same bytes
            continue
        marker = f"m{seq_start + i}"
        body = api_message_body(
            external_id=f"pipe-{seq_start + i}", marker=marker, customer=rng.randrange(customers)
        )
        bodies.append((marker, body))
        unique += 1

    async def listen(ws):
        nonlocal twice
        async for raw in ws:
            now = time.perf_counter()
            if '"message.created"' not in raw:
                continue
            text = json.loads(raw)["data"]["message"].get("body") or ""
            marker = text.rsplit(" ", 1)[-1]
            if not marker.startswith("m"):
                continue
            if marker in arrived:
                twice += 1
            else:
                arrived[marker] = now

    async def post(session, marker, body):
        headers = {
            "Content-Type": "application/json",
            "X-Signature": "sha256=" + hmac_sha256_hex(secret, body),
        }
        started = time.perf_counter()
        posted_at.setdefault(marker, started)
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except aiohttp.ClientError as exc:
            status = type(exc).__name__
        statuses[status] = statuses.get(status, 0) + 1
        webhook_latency.append(time.perf_counter() - started)

    async def sample(until):
        start = time.perf_counter()
        while time.perf_counter() < until:
            backlog.append((round(time.perf_counter() - start, 1), redis_client.llen(PENDING_KEY)))
            await asyncio.sleep(1.0)

    async with websockets.connect(agent_ws["url"], additional_headers=agent_ws["headers"]) as ws:
        listener = asyncio.create_task(listen(ws))
        await asyncio.sleep(0.5)
        connector = aiohttp.TCPConnector(limit=512)
        async with aiohttp.ClientSession(connector=connector) as session:
            start = time.perf_counter()
            sampler = asyncio.create_task(sample(start + duration))
            tasks = []
            late = 0
            for i, (marker, body) in enumerate(bodies):
                at = start + i / rate
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.05:
                    late += 1  # the generator itself fell behind: reported, not hidden
                tasks.append(asyncio.create_task(post(session, marker, body)))
            await asyncio.gather(*tasks)
            offered_for = time.perf_counter() - start
            await sampler
        load_end = time.perf_counter()
        settle_deadline = load_end + 300
        while len(arrived) < unique and time.perf_counter() < settle_deadline:
            await asyncio.sleep(0.1)
        settled_after = time.perf_counter() - load_end
        await asyncio.sleep(1.0)  # a second copy would come now
        listener.cancel()
    to_agent = [arrived[m] - posted_at[m] for m in arrived if m in posted_at]
    return {
        "offered_per_second": rate,
        "duration_s": duration,
        "webhooks_posted": total,
        "generator_late_posts": late,
        "posted_per_second": round(total / offered_for, 1),
        "http_statuses": statuses,
        "webhook_ms": ms_summary(webhook_latency),
        "post_to_agent_socket_ms": ms_summary(to_agent),
        "backlog_every_second": [n for _, n in backlog],
        "rest_done_after_load_s": round(settled_after, 2),
        "unique": unique,
        "pushed_to_agent": len(arrived),
        "pushed_twice": twice,
        "markers": [m for m, _ in (b for b in bodies if isinstance(b, tuple))],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100", help="offered webhooks per second, comma separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per rate")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--worker-nice", type=int, default=10, help="as bench/ingest.py")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--duplicates", type=float, default=0.05)
    parser.add_argument(
        "--automation-rules",
        type=int,
        default=0,
        help="active 'message received' rules (bench/automation.py)",
    )
    parser.add_argument(
        "--bot", action="store_true", help="the channel's bot on, over a small knowledge base"
    )
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="profile the worker during each rate (py-spy in the venv: pip install py-spy)",
    )
    args = parser.parse_args()

    env = django_bench_setup(
        db_name=os.environ.get("BENCH_DB_NAME", "helpdesk_bench_pipeline"),
        redis_default="redis://127.0.0.1:6379/9",
        DATABASE_POOL_MAX_SIZE=os.environ.get("DATABASE_POOL_MAX_SIZE", "12"),
    )
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from channels_adapters.models import Channel, InboundEvent
    from conversations.models import Message
    from helpdesk import roles

    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    secret = "bench-secret"
    channel_settings = {"bot": {"mode": "always", "name": "Bench bot"}} if args.bot else {}
    channel = Channel.objects.create(
        kind="api",
        name="Bench",
        credentials={"secret": secret, "callback_url": f"http://127.0.0.1:{sink.server_port}/"},
        settings=channel_settings,
    )
    if args.automation_rules:
        automation_rules_create(args.automation_rules)
    if args.bot:
        bot_articles_create()

    agent = get_user_model().objects.create_user("bench-agent", first_name="Bench")
    agent.groups.add(Group.objects.get_or_create(name=roles.SUPERVISORS)[0])
    client = Client()
    client.force_login(agent)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    redis_client = redis.Redis.from_url(env["REDIS_URL"])

    port = free_port()
    web = web_start(env=env, port=port, workers=args.web_workers, extra_args=("--backlog", "4096"))
    worker = worker_start(env=env, concurrency=args.celery_concurrency, nice=args.worker_nice)
    results, ok = [], True
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    try:
        if not wait_healthy(port=port, timeout=30):
            print("the web server did not start", file=sys.stderr)
            return 1
        url = f"http://127.0.0.1:{port}{channel.webhook_path}"
        agent_ws = {
            "url": f"ws://127.0.0.1:{port}/ws/agent/",
            "headers": {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"},
        }
        seq = 0
        # Warm-up: every process connected, caches filled; not counted.
        asyncio.run(
            offer(url=url, secret=secret, rate=20, duration=3, customers=args.customers, duplicates=0,
                  seq_start=10_000_000, agent_ws=agent_ws, redis_client=redis_client)
        )  # fmt: skip
        for rate in [float(r) for r in args.rates.split(",")]:
            load_before = os.getloadavg()[0]
            spy_path = str(ROOT / "bench" / "results" / f"pipeline-worker-{rate:g}.raw")
            spy = py_spy_start(worker.pid, args.duration, spy_path) if args.py_spy else None
            result = asyncio.run(
                offer(url=url, secret=secret, rate=rate, duration=args.duration, customers=args.customers,
                      duplicates=args.duplicates, seq_start=seq, agent_ws=agent_ws, redis_client=redis_client)
            )  # fmt: skip
            if spy is not None:
                spy.wait(timeout=60)
                result["worker_profile"] = py_spy_summary(spy_path, top=40)
            markers = result.pop("markers")
            ids = [f"pipe-{m[1:]}" for m in markers]
            stored = Message.objects.filter(channel=channel, external_id__in=ids).count()
            result |= {
                "load_average_before": round(load_before, 2),
                "load_average_after": round(os.getloadavg()[0], 2),
                "inbound_drainers": settings.HELPDESK["INBOUND_DRAINERS"],
                "automation_rules": args.automation_rules,
                "bot": args.bot,
                "messages_stored": stored,
                "lost": max(0, result["unique"] - stored),
                "doubled": max(0, stored - result["unique"]),
                "failed_events": InboundEvent.objects.filter(channel=channel, status="failed").count(),
            }
            held = result["rest_done_after_load_s"] < 2.0 and result["pushed_to_agent"] == result["unique"]
            result["rate_held"] = held
            good = stored == result["unique"] and result["pushed_twice"] == 0 and result["failed_events"] == 0
            ok = ok and good
            results.append(result)
            print(json.dumps(result, indent=2), flush=True)
            a = result["post_to_agent_socket_ms"]
            print(
                f"\n{rate:g} msg/s offered: webhook p99 {result['webhook_ms'].get('p99')} ms; POST -> agent "
                f"socket p50 {a.get('p50')} / p95 {a.get('p95')} / p99 {a.get('p99')} ms; rest done "
                f"{result['rest_done_after_load_s']} s after the load; {'held' if held else 'NOT held'}; "
                f"count check {'OK' if good else 'FAILED'} ({stored} stored of {result['unique']} unique, "
                f"{result['pushed_to_agent']} pushed, {result['pushed_twice']} twice)\n",
                flush=True,
            )
            seq += int(rate * args.duration) + 1
            time.sleep(3)
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / f"pipeline-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=2))
        return 0 if ok else 1
    finally:
        processes_stop([web, worker])
        sink.shutdown()


if __name__ == "__main__":
    sys.exit(main())
