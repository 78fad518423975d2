"""Voice benchmark: signed Twilio incoming-call webhooks through the real ASGI server.

Twilio waits at most 15 seconds for the TwiML answer of a call. This starts
uvicorn and a Celery worker on PostgreSQL + Redis, rings N calls (distinct
CallSids, callers drawn from a pool so some are returning customers) at
concurrency C, each signed with the real RequestValidator, and prints:
- the TwiML answer latency (p50/p95/p99/max) against the 15 s limit, and calls/s;
- the time until every call is a `call` message on its caller's thread (the
  worker side: identity, case, screen pop);
- the count check: one call message per CallSid, none lost, none doubled.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/voice_calls.py --calls 3000 --concurrency 32

DATABASE_URL names the server (the benchmark creates `helpdesk_bench_voice`
next to it); REDIS_URL is a database it may flush.
"""

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

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
DB_NAME = "helpdesk_bench_voice"


async def ring_all(url: str, calls: list[tuple[dict, str]], concurrency: int):
    import httpx

    latencies, statuses, dials = [], {}, 0
    queue = asyncio.Queue()
    for call in calls:
        queue.put_nowait(call)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker():
            nonlocal dials
            while True:
                try:
                    params, signature = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                response = await client.post(
                    url,
                    content=urlencode(params),
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature,
                    },
                )
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                dials += b"<Dial" in response.content

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, statuses, dials, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--callers", type=int, default=1000)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = django_bench_setup(
        db_name=DB_NAME,
        redis_default="redis://127.0.0.1:6379/8",
        HELPDESK_PUBLIC_BASE_URL=public,
        # A small pool per process keeps web + worker well under PostgreSQL's max_connections.
        DATABASE_POOL_MAX_SIZE=os.environ.get("DATABASE_POOL_MAX_SIZE", "6"),
    )
    from twilio.request_validator import RequestValidator

    from channels_adapters.models import Channel, InboundEvent
    from conversations.models import Message

    token = "bench-auth-token"
    channel = Channel.objects.create(
        kind="voice",
        name="Bench phone",
        credentials={"account_sid": "AC" + "0" * 32, "auth_token": token, "phone_number": "+14155550100"},
        settings={"forward_to": ["+34911234567"], "language": "en-US"},
    )
    url = public + channel.webhook_path
    validator = RequestValidator(token)
    rng = random.Random(42)
    calls = []
    for i in range(args.warmup + args.calls):
        caller = f"+1415{rng.randrange(args.callers) + 5560000:07d}"
        params = {
            "AccountSid": "AC" + "0" * 32,
            "ApiVersion": "2010-04-01",
            "CallSid": f"CA{i:032x}",
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": caller,
            "Caller": caller,
            "To": "+14155550100",
            "Called": "+14155550100",
        }
        calls.append((params, validator.compute_signature(url, params)))
    warmup, measured = calls[: args.warmup], calls[args.warmup :]

    procs = [
        web_start(env=env, port=port, workers=args.web_workers),
        worker_start(env=env, concurrency=args.celery_concurrency),
    ]
    try:
        wait_healthy(port=port, timeout=30)
        asyncio.run(ring_all(url, warmup, args.concurrency))
        first = time.perf_counter()
        latencies, statuses, dials, elapsed = asyncio.run(ring_all(url, measured, args.concurrency))
        deadline = time.time() + 600
        expected = args.warmup + args.calls
        while time.time() < deadline:
            if Message.objects.filter(kind="call").count() >= expected:
                break
            time.sleep(0.2)
        end_to_end = time.perf_counter() - first
        stored = Message.objects.filter(kind="call").count()
        distinct = Message.objects.filter(kind="call").values("external_id").distinct().count()
        failed = InboundEvent.objects.filter(status="failed").count()
    finally:
        processes_stop(procs)

    ms = [x * 1000 for x in latencies]
    print(f"calls rung: {len(measured)} at concurrency {args.concurrency} (+{args.warmup} warm-up)")
    print(f"HTTP statuses: {statuses}; answered with <Dial>: {dials}")
    print(f"TwiML answered: {len(measured) / elapsed:.0f} calls/s")
    print(
        f"answer latency ms: p50 {percentile(ms, 50):.1f}  p95 {percentile(ms, 95):.1f}  "
        f"p99 {percentile(ms, 99):.1f}  max {max(ms):.1f}  (Twilio's limit: 15000)"
    )
    print(
        f"every call on its thread after {end_to_end:.1f} s "
        f"({args.calls / end_to_end:.0f} calls/s end to end)"
    )
    print(
        f"count check: {stored} call messages, {distinct} distinct CallSids, expected {expected}; "
        f"failed events {failed}"
    )
    ok = statuses.get(200) == len(measured) and stored == distinct == expected and failed == 0
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
