"""Outbound benchmark: replies queued at a fixed rate, sent by a real Celery worker to local providers.

Issue 20's outbound target: replies queued -> provider accepted at 300
sends/s, p99 under 1 s, never sent twice, on the 2-core machine with
everything sharing it (producers, worker, PostgreSQL, Redis, the providers).

- Its own database (`helpdesk_bench_outbound`) and Redis db (flushed).
- Channels: WhatsApp Cloud numbers and Twilio SMS numbers (`--whatsapp`,
  `--sms`), the real clients (httpx for Graph, the `twilio` library) pointed
  at one local provider server (a separate aiohttp process) that answers as
  the providers do: `POST /<version>/<phone_number_id>/messages` with a
  Bearer token -> `{"messages": [{"id": "wamid..."}]}`, and Twilio's
  `POST /2010-04-01/Accounts/<sid>/Messages.json` with basic auth -> 201 and
  a Message resource. It records every request with our message id (WhatsApp's
  `biz_opaque_callback_data`, Twilio's `StatusCallback ?message=`) so
  duplicates are counted. `--fail-share` answers 500 to that share of first
  tries (retries with backoff on the path).
- Customers who wrote in on one of the channels (so WhatsApp's 24-hour window
  is open), one open case each.
- A Celery worker as production runs it (prefork, `--concurrency`).
- `--producers` processes call `send_reply` (the service the inbox's reply
  form calls) on a fixed schedule, open loop: reply k is due at k / rate
  whether or not the worker keeps up. Producer p owns the cases of its
  residue, so two producers never wait on one thread's lock.

Printed: offered and achieved rates, queued -> provider-accepted latency
(`created_at` of the queued row to the provider server's receipt) and
queued -> marked sent in our DB (`sent_at`), backlog over time, the count
check (every reply accepted exactly once by the provider: 0 missing, 0
twice), failures and retries, CPU seconds per part, queries per send and
per reply (`--count-queries`, in-process after the run).

    REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/outbound.py --rate 300 --duration 30
    make bench-outbound BENCH_ARGS="--rate 100 --duration 10"

Environment: DATABASE_URL (only its server is used) and REDIS_URL (a db it flushes).
"""

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from harness import (
    django_bench_setup,
    free_port,
    percentile,
    processes_stop,
    py_spy_start,
    py_spy_summary,
    worker_start,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WA_TOKEN = "bench-whatsapp-token"
TWILIO_SID = "AC" + "b" * 32
TWILIO_TOKEN = "bench-twilio-token"


# The provider server ------------------------------------------------------------


def provider_serve(port: int, fail_share: float) -> None:
    """One asyncio process playing Graph (WhatsApp Cloud) and Twilio's Messages API."""
    import asyncio
    import base64
    import random
    import uuid
    from urllib.parse import parse_qs, urlsplit

    from aiohttp import web

    from channels_adapters.twilio.resources import message_resource

    records: list[list] = []  # [provider, message id, received at, answered status]
    failed_first: set = set()
    rng = random.Random(20)
    expected_basic = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()

    def fail_first(key) -> bool:
        if fail_share and key not in failed_first and rng.random() < fail_share:
            failed_first.add(key)
            return True
        return False

    async def whatsapp(request):
        at = time.time()
        if request.headers.get("Authorization") != f"Bearer {WA_TOKEN}":
            return web.json_response(
                {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}},
                status=401,
            )
        body = await request.json()
        reference = str(body.get("biz_opaque_callback_data") or "")
        message_id = int(reference.rsplit("-", 1)[-1]) if reference[-1:].isdigit() else None
        if fail_first(("wa", message_id)):
            records.append(["whatsapp", message_id, at, 500])
            return web.json_response(
                {"error": {"message": "Service temporarily unavailable", "code": 2, "is_transient": True}},
                status=500,
            )
        records.append(["whatsapp", message_id, at, 200])
        to = str(body.get("to") or "")
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": "wamid." + uuid.uuid4().hex}],
            }
        )

    async def twilio(request):
        at = time.time()
        if request.headers.get("Authorization") != expected_basic:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        form = await request.post()
        callback = urlsplit(str(form.get("StatusCallback") or ""))
        ours = parse_qs(callback.query).get("message", [""])[0]
        message_id = int(ours) if ours.isdigit() else None
        if fail_first(("sms", message_id)):
            records.append(["twilio", message_id, at, 500])
            return web.json_response(
                {"code": 20500, "message": "Internal Server Error", "status": 500}, status=500
            )
        records.append(["twilio", message_id, at, 201])
        sid = "SM" + uuid.uuid4().hex
        account = request.match_info["account"]
        return web.json_response(
            message_resource(
                sid=sid,
                account_sid=account,
                to=form.get("To"),
                from_=form.get("From"),
                body=form.get("Body", ""),
            ),
            status=201,
        )

    async def dump(request):
        return web.json_response(records)

    async def main():
        app = web.Application()
        app.router.add_post("/{version}/{number}/messages", whatsapp)
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", twilio)
        app.router.add_get("/_records", dump)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())


def provider_records(port: int) -> list:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_records", timeout=30) as response:
        return json.load(response)


# Data -----------------------------------------------------------------------------


def seed(*, customers: int, whatsapp: int, sms: int) -> list[int]:
    """Channels and customers who wrote in (WhatsApp's window open); returns their case ids."""
    from channels_adapters.base import Sender
    from channels_adapters.models import Channel
    from conversations.services import receive_inbound

    channels = [
        Channel.objects.create(
            kind="whatsapp",
            name=f"WhatsApp {n}",
            credentials={
                "phone_number_id": f"10{n:08d}",
                "access_token": WA_TOKEN,
                "app_secret": "bench",
                "verify_token": "bench",
            },
        )
        for n in range(whatsapp)
    ] + [
        Channel.objects.create(
            kind="sms",
            name=f"SMS {n}",
            credentials={
                "account_sid": TWILIO_SID,
                "auth_token": TWILIO_TOKEN,
                "phone_number": f"+1415555{n:04d}",
            },
        )
        for n in range(sms)
    ]
    cases = []
    for c in range(customers):
        channel = channels[c % len(channels)]
        result = receive_inbound(
            channel=channel,
            sender=Sender("phone", f"+1628{5000000 + c:07d}", f"Customer {c}"),
            external_id=f"in-{c}",
            text=f"Hello, this is customer {c}",
        )
        cases.append(result.message.case_id)
    return cases


# Producers ------------------------------------------------------------------------


def producer_run(env, index, producers, case_ids, agent_id, rate, count, t0, out, warmup):
    """Replies due at t0 + k / rate for the k of this producer's residue; returns what it did."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from conversations.models import Case
    from conversations.services import send_reply

    agent = get_user_model().objects.get(pk=agent_id)
    mine = [pk for n, pk in enumerate(case_ids) if n % producers == index]
    cases = {c.pk: c for c in Case.objects.select_related("thread", "origin_channel").filter(pk__in=mine)}
    # Warm-up (connections, imports, caches): not timed, not counted.
    warm = [send_reply(case=cases[pk], author_user=agent, body="warm-up").pk for pk in mine[:warmup]]
    done, late, errors = [], [], []
    while time.time() < t0:
        time.sleep(0.01)
    cpu0 = time.process_time()
    for k in range(index, count, producers):
        due = t0 + k / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        late.append(max(0.0, time.time() - due))
        # Round robin over this producer's own cases (any --customers, not only multiples of --producers).
        case = cases[mine[(k // producers) % len(mine)]]
        try:
            message = send_reply(case=case, author_user=agent, body=f"Reply {k} to case {case.pk}")
            done.append((message.pk, k, due))
        except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    out.put(
        {
            "index": index,
            "cpu": time.process_time() - cpu0,
            "warm": warm,
            "done": done,
            "late": late,
            "errors": errors,
            "finished": time.time(),
        }
    )


# CPU ------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return found


def tree_cpu(pid: int) -> float:
    return sum(_cpu_seconds(p) for p in _descendants(pid))


def postgres_cpu(db_name: str) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend serving this database (pid -> seconds)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [db_name])
        pids = [row[0] for row in cursor.fetchall()]
    return {p: _cpu_seconds(p) for p in pids}


def machine_busy() -> float:
    """CPU seconds every process of the machine used so far (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# Figures --------------------------------------------------------------------------


def _ms(values):
    if not values:
        return None
    return {q: round(percentile(values, int(q[1:])), 1) for q in ("p50", "p95", "p99")} | {
        "max": round(max(values), 1)
    }


def figures(*, produced, records, t0, duration_offered, warm):
    from django.db.models import Count

    from conversations.models import DeliveryAttempt, DeliveryStatus, Message

    ids = [pk for pk, _k, _due in produced]
    rows = {
        r["pk"]: r
        for r in Message.objects.filter(pk__in=ids).values(
            "pk", "created_at", "sent_at", "status", "case_id", "attempts", "error"
        )
    }
    accepted: dict[int, list[float]] = {}
    refused = 0
    unknown_requests = 0
    for _provider, message_id, at, status in records:
        if status >= 300:
            refused += 1
            continue
        if message_id not in rows:
            unknown_requests += message_id not in warm
            continue
        accepted.setdefault(message_id, []).append(at)
    to_provider = []
    to_sent = []
    accepted_times = []
    for pk, row in rows.items():
        created = row["created_at"].timestamp()
        if pk in accepted:
            first = min(accepted[pk])
            to_provider.append((first - created) * 1000)
            accepted_times.append(first)
        if row["sent_at"] is not None:
            to_sent.append((row["sent_at"].timestamp() - created) * 1000)
    statuses: dict[str, int] = {}
    for row in rows.values():
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    # Per case: did the provider get the replies in the order they were queued?
    out_of_order = 0
    by_case: dict[int, list[tuple[float, int]]] = {}
    for pk, times in accepted.items():
        by_case.setdefault(rows[pk]["case_id"], []).append((min(times), pk))
    for arrivals in by_case.values():
        arrivals.sort()
        highest = 0
        for _at, pk in arrivals:
            if pk < highest:
                out_of_order += 1
            highest = max(highest, pk)
    # Backlog: queued and not yet accepted, sampled each second from the timestamps.
    created_times = sorted(r["created_at"].timestamp() for r in rows.values())
    accepted_times.sort()
    end = max(accepted_times[-1] if accepted_times else t0, created_times[-1] if created_times else t0)
    backlog = []
    second = 0
    import bisect

    while t0 + second <= end + 1:
        at = t0 + second
        backlog.append(bisect.bisect_right(created_times, at) - bisect.bisect_right(accepted_times, at))
        second += 1
    # Sends per second in the offered window (after the first second, before the last).
    window = [t for t in accepted_times if t0 + 1 <= t < t0 + duration_offered]
    attempts = DeliveryAttempt.objects.filter(message_id__in=ids).values("outcome").annotate(n=Count("pk"))
    return {
        "replies_queued": len(rows),
        "queued_per_s": round(len(created_times) / (created_times[-1] - created_times[0]), 1)
        if len(created_times) > 1
        else None,
        "accepted_per_s_offered_window": round(len(window) / max(duration_offered - 1, 1e-9), 1),
        "accepted_per_s_first_to_last": round(
            len(accepted_times) / (accepted_times[-1] - accepted_times[0]), 1
        )
        if len(accepted_times) > 1
        else None,
        "all_accepted_after_s": round(accepted_times[-1] - t0, 2) if accepted_times else None,
        "queued_to_provider_ms": _ms(to_provider),
        "queued_to_sent_in_db_ms": _ms(to_sent),
        "backlog_each_second": backlog,
        "backlog_max": max(backlog) if backlog else 0,
        "statuses": statuses,
        "attempts": {a["outcome"]: a["n"] for a in attempts},
        "provider_refused_first_tries": refused,
        "checks": {
            "missing": len([pk for pk in rows if pk not in accepted]),
            "twice": len([pk for pk, times in accepted.items() if len(times) > 1]),
            "requests_for_unknown_ids": unknown_requests,
            "not_sent_in_db": len(rows) - statuses.get(DeliveryStatus.SENT, 0),
            "per_case_out_of_order": out_of_order,
        },
    }


def count_queries(*, case_ids, agent_id, n: int) -> dict:
    """Queries per reply queued (send_reply) and per send (message_deliver, one batch), in this process."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conversations import batches, delivery
    from conversations.models import Case
    from conversations.services import send_reply

    agent = get_user_model().objects.get(pk=agent_id)
    cases = list(Case.objects.select_related("thread", "origin_channel").filter(pk__in=case_ids[:n]))
    per_reply, per_send, messages = [], [], []
    for case in cases:
        with CaptureQueriesContext(connection) as ctx:
            messages.append(send_reply(case=case, author_user=agent, body="Counting queries"))
        per_reply.append(len(ctx.captured_queries))
    started = time.perf_counter()
    for message in messages:
        with CaptureQueriesContext(connection) as ctx:
            delivery.message_deliver(message_id=message.pk, worker="bench-count")
        per_send.append(len(ctx.captured_queries))
    elapsed = time.perf_counter() - started
    last_send = [q["sql"][:160] for q in ctx.captured_queries]
    # The worker's path: one task's batch takes them all (conversations/batches.py).
    cpu = time.process_time()
    batch = [send_reply(case=case, author_user=agent, body="Counting a batch") for case in cases]
    cpu_per_reply = (time.process_time() - cpu) / len(batch)
    cpu, started = time.process_time(), time.perf_counter()
    with CaptureQueriesContext(connection) as ctx:
        outcomes = batches.messages_deliver_due(
            message_id=batch[0].pk, worker="bench-count", limit=len(batch)
        )
    return {
        "sends": len(messages),
        "queries_per_reply_queued": round(sum(per_reply) / len(per_reply), 2),
        "in_process_cpu_ms_per_reply_queued": round(cpu_per_reply * 1000, 2),
        "queries_per_send": round(sum(per_send) / len(per_send), 2),
        "queries_per_send_max": max(per_send),
        "in_process_ms_per_send": round(elapsed / len(messages) * 1000, 2),
        "queries_of_last_send": last_send,
        "batch_sends": sum(o.outcome == "sent" for o in outcomes.values()),
        "batch_queries_per_send": round(len(ctx.captured_queries) / len(batch), 2),
        "batch_cpu_ms_per_send": round((time.process_time() - cpu) / len(batch) * 1000, 2),
        "batch_ms_per_send": round((time.perf_counter() - started) / len(batch) * 1000, 2),
    }


def producer_cpu(*, case_ids, agent_id, n: int, rounds: int, profile: bool) -> dict:
    """Process CPU per send_reply in this process, the worker not running: the producers' cost alone.

    Wall times on the shared cores are noise; a reply's CPU is the figure to
    compare between two codes run in the same minutes. Each round replies n
    times round robin over the cases; the median round is the figure.
    """
    import cProfile
    import io
    import pstats

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conversations.models import Case
    from conversations.services import send_reply

    agent = get_user_model().objects.get(pk=agent_id)
    cases = list(Case.objects.select_related("thread", "origin_channel").filter(pk__in=case_ids))
    for case in cases[:20]:  # warm-up: imports, connections, caches
        send_reply(case=case, author_user=agent, body="warm-up")
    per_round = []
    for r in range(rounds):
        cpu = time.process_time()
        for k in range(n):
            send_reply(case=cases[(r * n + k) % len(cases)], author_user=agent, body=f"Reply {k}")
        per_round.append((time.process_time() - cpu) / n * 1000)
    with CaptureQueriesContext(connection) as ctx:
        for case in cases[:20]:
            send_reply(case=case, author_user=agent, body="Counting queries")
    result = {
        "replies_per_round": n,
        "cpu_ms_per_reply_rounds": [round(x, 3) for x in per_round],
        "cpu_ms_per_reply_median": round(sorted(per_round)[len(per_round) // 2], 3),
        "queries_per_reply": round(len(ctx.captured_queries) / 20, 2),
        "queries_of_last_reply": [q["sql"][:300] for q in ctx.captured_queries[-12:]],
    }
    if profile:
        profiler = cProfile.Profile(time.process_time)  # CPU, not waits
        profiler.enable()
        for k in range(n):
            send_reply(case=cases[k % len(cases)], author_user=agent, body=f"Profiled {k}")
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(
            int(os.environ.get("BENCH_TOP", "45"))
        )
        result["profile"] = text.getvalue().splitlines()
    return result


def wait_final(ids, timeout: float) -> bool:
    from conversations.models import DeliveryStatus, Message

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Message.objects.filter(pk__in=ids, status=DeliveryStatus.QUEUED).exists():
            return True
        time.sleep(0.25)
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=300.0, help="replies queued per second (offered)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of offered load")
    parser.add_argument("--customers", type=int, default=600, help="cases replied to, round robin")
    parser.add_argument("--whatsapp", type=int, default=2, help="WhatsApp Cloud channels")
    parser.add_argument("--sms", type=int, default=2, help="Twilio SMS channels")
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker processes (prefork)")
    parser.add_argument("--producers", type=int, default=3, help="processes queueing replies")
    parser.add_argument("--fail-share", type=float, default=0.0, help="share of first tries answered 500")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds to finish after the load")
    parser.add_argument("--count-queries", type=int, default=20, help="sends counted in-process after")
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="queue every reply first (as fast as --rate allows), then start sending: the drain rate",
    )
    parser.add_argument("--py-spy", action="store_true", help="profile the worker during the load")
    parser.add_argument(
        "--producer-cpu",
        type=int,
        metavar="N",
        help="only time N send_reply calls' process CPU in this process (no worker, no provider)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="--producer-cpu rounds (the median is kept)")
    parser.add_argument("--profile", action="store_true", help="--producer-cpu: a cProfile of N more replies")
    parser.add_argument("--db-name", default="helpdesk_bench_outbound", help="the bench's own database")
    parser.add_argument("--serve-provider", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_provider:
        provider_serve(args.serve_provider, args.fail_share)
        return

    provider_port = free_port()
    provider_url = f"http://127.0.0.1:{provider_port}"
    db_name = args.db_name
    extra = {
        "GRAPH_API_BASE_URL": provider_url,
        "TWILIO_API_BASE_URL": provider_url,
        # Retries quick enough to finish in a bounded run (production: 5 s doubling).
        "HELPDESK_OUTBOUND_BACKOFF_SECONDS": os.environ.get("HELPDESK_OUTBOUND_BACKOFF_SECONDS", "0.5"),
        "HELPDESK_OUTBOUND_BACKOFF_MAX_SECONDS": "4",
        # As in production (docker-compose.yml): connections kept, not one per task.
        "DATABASE_CONN_MAX_AGE": os.environ.get("BENCH_CONN_MAX_AGE", "60"),
    }
    env = django_bench_setup(db_name=db_name, redis_default="redis://127.0.0.1:6379/8", **extra)
    from django.contrib.auth import get_user_model
    from django.db import connections

    if args.producer_cpu:
        case_ids = seed(customers=args.customers, whatsapp=args.whatsapp, sms=args.sms)
        agent = get_user_model().objects.create(username="bench-agent", first_name="Bench")
        load_before = load_average()
        result = producer_cpu(
            case_ids=case_ids, agent_id=agent.pk, n=args.producer_cpu, rounds=args.rounds,
            profile=args.profile,
        )  # fmt: skip
        profile = result.pop("profile", None)
        print(json.dumps({"load_average_before_after": [load_before, load_average()], **result}, indent=2))
        if profile:
            print("\n".join(profile))
        return

    procs = []
    provider = subprocess.Popen(
        [sys.executable, __file__, "--serve-provider", str(provider_port)]
        + ["--fail-share", str(args.fail_share)],
        cwd=ROOT,
        env=env,
    )
    procs.append(provider)
    seeded_at = time.perf_counter()
    case_ids = seed(customers=args.customers, whatsapp=args.whatsapp, sms=args.sms)
    agent = get_user_model().objects.create(username="bench-agent", first_name="Bench")
    print(f"seeded {len(case_ids)} cases in {time.perf_counter() - seeded_at:.1f} s", flush=True)
    # Backlog: the worker boots listening to nothing, and takes the queue once
    # every reply is queued (its boot is not in the figures).
    extra = ("--queues", "bench-idle", "--hostname", "bench-outbound@%h") if args.backlog else ()
    worker = worker_start(env=env, concurrency=args.concurrency, extra_args=extra)
    procs.append(worker)
    connections.close_all()

    count = int(args.rate * args.duration)
    warmup = 5
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    # Start in a few seconds: the producers boot Django and warm up first.
    t0 = time.time() + 8.0
    producers = [
        ctx.Process(
            target=producer_run,
            args=(env, i, args.producers, case_ids, agent.pk, args.rate, count, t0, out, warmup),
        )
        for i in range(args.producers)
    ]
    for p in producers:
        p.start()
    load_before = load_average()
    cpu_start = None
    while time.time() < t0:
        time.sleep(0.05)
    cpu_start = {
        "worker": tree_cpu(worker.pid),
        "provider": tree_cpu(provider.pid),
        "postgres": postgres_cpu(db_name),
        "machine": machine_busy(),
    }
    started_wall = time.time()
    spy_path = f"/tmp/bench-outbound-worker-{os.getpid()}.txt"
    spy = py_spy_start(worker.pid, args.duration, spy_path) if args.py_spy and not args.backlog else None
    results = [out.get() for _ in producers]
    for p in producers:
        p.join()
    load_during = load_average()
    produced = sorted(d for r in results for d in r["done"])
    ids = [pk for pk, _k, _due in produced]
    if args.backlog:
        from helpdesk.celery_app import app

        print(f"{len(ids)} replies queued; the worker takes the queue", flush=True)
        cpu_start["worker"] = tree_cpu(worker.pid)
        cpu_start["machine"] = machine_busy()
        cpu_start["postgres"] = postgres_cpu(db_name)
        started_wall = time.time()
        app.control.add_consumer("celery", destination=["bench-outbound@" + socket.gethostname()])
        if args.py_spy:
            spy = py_spy_start(worker.pid, 15, spy_path)
    finished = wait_final(ids, args.settle)
    cpu = {
        "worker": tree_cpu(worker.pid) - cpu_start["worker"],
        "provider": tree_cpu(provider.pid) - cpu_start["provider"],
        "postgres (this database's backends)": sum(
            t - cpu_start["postgres"].get(p, 0.0) for p, t in postgres_cpu(db_name).items()
        ),
        "machine (every process, 2 cores)": machine_busy() - cpu_start["machine"],
        "wall": time.time() - started_wall,
    }
    time.sleep(0.5)
    records = provider_records(provider_port)
    late = [x * 1000 for r in results for x in r["late"]]
    result = {
        "args": {k: v for k, v in vars(args).items() if k != "serve_provider"},
        "load_average_before_during": [load_before, load_during],
        "all_final": finished,
        "offered_per_s": args.rate,
        "producer_late_ms": _ms(late),
        "producer_errors": [e for r in results for e in r["errors"]][:10],
        "producer_error_count": sum(len(r["errors"]) for r in results),
        **figures(
            produced=produced,
            records=records,
            t0=t0,
            duration_offered=args.duration,
            warm={pk for r in results for pk in r["warm"]},
        ),
    }
    cpu["producers"] = sum(r["cpu"] for r in results)
    result["cpu_seconds"] = {k: round(v, 1) for k, v in cpu.items()}
    processes_stop([worker])
    procs.remove(worker)
    if args.count_queries:
        result["in_process"] = count_queries(case_ids=case_ids, agent_id=agent.pk, n=args.count_queries)
    processes_stop(procs)
    if spy is not None:
        spy.wait(timeout=60)
        result["worker_profile"] = py_spy_summary(spy_path)
        result["worker_profile_file"] = spy_path
    backlog = result.pop("backlog_each_second")
    print(json.dumps(result, indent=2, default=str))
    print("backlog each second:", backlog)
    checks = result["checks"]
    ok = finished and checks["missing"] == 0 and checks["twice"] == 0 and checks["not_sent_in_db"] == 0
    lat = result["queued_to_provider_ms"] or {}
    print(
        f"offered {args.rate}/s, queued {result['queued_per_s']}/s, accepted "
        + (
            f"{result['accepted_per_s_first_to_last']}/s draining the backlog; "
            if args.backlog
            else f"{result['accepted_per_s_offered_window']}/s; "
        )
        + "queued->provider p50/p95/p99 "
        f"{lat.get('p50')}/{lat.get('p95')}/{lat.get('p99')} ms; missing {checks['missing']}, "
        f"twice {checks['twice']}; load {load_before} -> {load_during}"
    )
    print("OK: every reply sent exactly once" if ok else "NOT OK: see the counts above")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
