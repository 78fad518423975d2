"""Ingest benchmark: signed API-channel webhooks through the real ASGI server.

Starts uvicorn (several workers) and a Celery worker (at a lower CPU priority,
`--worker-nice`) on PostgreSQL + Redis,
sends N signed webhooks at concurrency C with 5% deliberate duplicates, then
prints accepted messages/s and latency percentiles (webhook answered), the
end-to-end rate (until every message is stored on its thread), and the count
check: exactly the unique messages stored, none lost, none doubled.

    make bench-ingest                      # defaults below
    .venv/bin/python bench/ingest.py --messages 20000 --concurrency 32

Environment: DATABASE_URL (any database on the server; the benchmark creates
its own `helpdesk_bench_ingest` next to it) and REDIS_URL (a db it may flush).
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

from harness import (
    automation_rules_create,
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


async def send_all(url, bodies, secret, concurrency):
    import aiohttp

    from channels_adapters.base import hmac_sha256_hex

    latencies, statuses = [], {}
    queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker():
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                headers = {
                    "Content-Type": "application/json",
                    "X-Signature": "sha256=" + hmac_sha256_hex(secret, body),
                }
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, statuses, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--duplicates", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=10,
        help="CPU priority of the Celery worker below the web tier's (0: equal; see bench/README.md)",
    )
    parser.add_argument(
        "--process-after",
        action="store_true",
        help="start the Celery worker only once every webhook is answered: measures what the web "
        "tier accepts alone, then how fast the backlog is processed",
    )
    parser.add_argument(
        "--automation-rules",
        type=int,
        default=0,
        help="active 'message received' rules to evaluate on every message (bench/automation.py's mix)",
    )
    args = parser.parse_args()

    env = django_bench_setup(
        db_name="helpdesk_bench_ingest",
        redis_default="redis://127.0.0.1:6379/9",
        DATABASE_POOL_MAX_SIZE=os.environ.get("DATABASE_POOL_MAX_SIZE", "12"),
    )
    from django.conf import settings

    from channels_adapters.models import Channel, InboundEvent
    from conversations.models import Message

    secret = "bench-secret"
    channel = Channel.objects.create(
        kind="api", name="Bench", credentials={"secret": secret, "callback_url": "http://127.0.0.1:9/"}
    )

    if args.automation_rules:
        automation_rules_create(args.automation_rules)

    rng = random.Random(42)
    unique_bodies, bodies = [], []
    total = args.warmup + args.messages
    for i in range(total):
        if unique_bodies and rng.random() < args.duplicates:
            bodies.append(rng.choice(unique_bodies))  # a provider's retry: same bytes
            continue
        body = json.dumps(
            {
                "external_id": f"bench-{i}",
                "from": {
                    "phone": f"+1415{rng.randrange(args.customers) + 5550000:07d}",
                    "name": "Bench customer",
                },
                "text": f"Message {i}: where is my order?",
                "timestamp": int(time.time()),
            }
        ).encode()
        unique_bodies.append(body)
        bodies.append(body)
    warmup, measured = bodies[: args.warmup], bodies[args.warmup :]

    port = free_port()
    web = web_start(env=env, port=port, workers=args.web_workers)

    def start_worker():
        return worker_start(env=env, concurrency=args.celery_concurrency, nice=args.worker_nice)

    procs = [web] if args.process_after else [web, start_worker()]
    try:
        wait_healthy(port=port, timeout=20)
        url = f"http://127.0.0.1:{port}{channel.webhook_path}"
        asyncio.run(send_all(url, warmup, secret, args.concurrency))

        first_send = time.perf_counter()
        latencies, statuses, elapsed = asyncio.run(send_all(url, measured, secret, args.concurrency))
        if args.process_after:
            backlog_start = time.perf_counter()
            procs.append(start_worker())
        deadline = time.time() + 600
        while time.time() < deadline:
            if not InboundEvent.objects.filter(status="pending").exists():
                break
            time.sleep(0.2)
        end_to_end = time.perf_counter() - first_send
        processing_per_second = (
            round(len(measured) / (time.perf_counter() - backlog_start), 1) if args.process_after else None
        )

        stored = Message.objects.filter(channel=channel).count()
        events = InboundEvent.objects.filter(channel=channel).count()
        failed = InboundEvent.objects.filter(channel=channel, status="failed").count()
        pending = InboundEvent.objects.filter(channel=channel, status="pending").count()
        unique = len(unique_bodies)
        ms = [v * 1000 for v in latencies]
        result = {
            "messages_sent": len(measured),
            "concurrency": args.concurrency,
            "web_workers": args.web_workers,
            "celery_concurrency": args.celery_concurrency,
            "worker_nice": args.worker_nice,
            "asgi_request_threads": settings.ASGI_REQUEST_THREADS,
            "inbound_drainers": settings.HELPDESK["INBOUND_DRAINERS"],
            "http_statuses": statuses,
            "accepted_per_second": round(len(measured) / elapsed, 1),
            "latency_ms": {
                "p50": round(percentile(ms, 50), 1),
                "p95": round(percentile(ms, 95), 1),
                "p99": round(percentile(ms, 99), 1),
                "mean": round(statistics.mean(ms), 1),
            },
            "end_to_end_per_second": round(len(measured) / end_to_end, 1),
            "mode": "worker started after the webhooks" if args.process_after else "worker running",
            "backlog_processed_per_second": processing_per_second,
            "count_check": {
                "webhooks_posted": total,
                "events_stored": events,
                "unique_messages": unique,
                "messages_stored": stored,
                "lost": unique - stored if stored < unique else 0,
                "doubled": stored - unique if stored > unique else 0,
                "failed_events": failed,
                "pending_events": pending,
            },
        }
        ok = stored == unique and events == total and failed == 0 and pending == 0
        print(json.dumps(result, indent=2))
        print(
            f"\n{result['accepted_per_second']} messages/s accepted, "
            f"p50 {result['latency_ms']['p50']} ms, p95 {result['latency_ms']['p95']} ms, "
            f"p99 {result['latency_ms']['p99']} ms; end to end {result['end_to_end_per_second']} "
            f"messages/s; count check {'OK' if ok else 'FAILED'}: {stored} stored of {unique} unique "
            f"({total - unique} duplicates posted)"
        )
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / f"ingest-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=2))
        return 0 if ok else 1
    finally:
        processes_stop(procs)


if __name__ == "__main__":
    sys.exit(main())
