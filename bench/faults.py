"""Fault benchmark: kill -9 under load, then count what was lost, doubled or left stuck.

Scenarios (issue 12, "Crash recovery"), each on a fresh database with the
real web tier (uvicorn), Celery worker and beat on PostgreSQL + Redis:

- `inbound-worker`: signed API-channel webhooks at a steady rate; the whole
  Celery worker (parent and pool processes) is killed -9 mid-stream and
  started again at once, as a supervisor would.
- `inbound-web`: the same load; one uvicorn worker process is killed -9.
  The load generator retries what was not answered 2xx, as providers do.
- `outbound-worker`: agent replies on an API channel whose callback is a
  local server playing the integrator: it answers each send after a short
  delay and, like a real integration, posts a signed status callback naming
  our message id. The worker is killed -9 with sends in flight, then
  started again.

Printed per scenario: lost (accepted, never landed / never sent), doubled
(a message stored twice / a send the provider got twice), stuck (still
pending or queued at the end), "may have been sent" left unsettled, the
longest pause in processing around the kill and how long after the kill
processing resumed and the backlog was cleared.

    .venv/bin/python bench/faults.py --scenario all --webhooks 2000 --replies 200

Environment: DATABASE_URL (the benchmark creates `helpdesk_bench_faults`
next to it) and REDIS_URL (a db it flushes).
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import django_bench_setup, free_port, processes_stop, wait_healthy, web_start, worker_start

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret"


def beat_start(*, env: dict, schedule: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "helpdesk", "beat",
            "--loglevel", "warning", "--schedule", schedule,
        ],
        cwd=ROOT, env=env,
    )  # fmt: skip


def kill_group(proc: subprocess.Popen) -> None:
    """kill -9 of the worker and its pool processes at once: what an OOM kill or a node loss does."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def web_workers(pid: int) -> list[int]:
    """uvicorn's worker processes (its children, minus multiprocessing's resource tracker)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return []
    workers = []
    for child in pids:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"resource_tracker" not in f.read():
                    workers.append(child)
        except OSError:
            pass
    return workers


async def post_steadily(url, bodies, rate, concurrency, accepted, errors):
    """POST at `rate` per second; what is not answered 2xx is sent again after a pause, as providers do."""
    import aiohttp

    from channels_adapters.base import hmac_sha256_hex

    interval = 1.0 / rate
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:

        async def one(external_id, body):
            async with semaphore:
                for _ in range(20):
                    headers = {
                        "Content-Type": "application/json",
                        "X-Signature": "sha256=" + hmac_sha256_hex(SECRET, body),
                    }
                    try:
                        async with session.post(url, data=body, headers=headers) as response:
                            await response.read()
                            if 200 <= response.status < 300:
                                accepted.add(external_id)
                                return
                            errors[str(response.status)] = errors.get(str(response.status), 0) + 1
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    await asyncio.sleep(0.5)

        tasks = []
        started = time.monotonic()
        for n, (external_id, body) in enumerate(bodies):
            delay = started + n * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(external_id, body)))
        await asyncio.gather(*tasks)


def pending_list_duplicates(client) -> int:
    from channels_adapters.services import PENDING_KEY

    ids = client.lrange(PENDING_KEY, 0, -1)
    return len(ids) - len(set(ids))


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def processing_figures(times: list[float], kill_at: float, accepted_before_kill_done: float | None) -> dict:
    times = sorted(times)
    after = [t for t in times if t > kill_at]
    around = [t for t in times if t > kill_at - 2]
    gaps = [b - a for a, b in zip([kill_at, *around], around, strict=False)]
    return {
        "processing_resumed_after_kill_s": round(after[0] - kill_at, 2) if after else None,
        "longest_pause_after_kill_s": round(max(gaps), 2) if gaps else None,
        "backlog_of_the_kill_cleared_after_s": (
            round(accepted_before_kill_done - kill_at, 2) if accepted_before_kill_done else None
        ),
    }


def inbound(args, env, *, kill: str) -> dict:
    import redis

    from channels_adapters.models import Channel, InboundEvent
    from conversations.models import Message

    channel = Channel.objects.create(
        kind="api",
        name=f"Faults {kill}",
        credentials={"secret": SECRET, "callback_url": "http://127.0.0.1:9/"},
    )
    bodies = [
        (
            f"{kill}-{i}",
            json.dumps(
                {
                    "external_id": f"{kill}-{i}",
                    "from": {"phone": f"+1415{5550000 + i % 500:07d}"},
                    "text": f"Message {i}",
                }
            ).encode(),
        )
        for i in range(args.webhooks)
    ]
    port = free_port()
    web = web_start(env=env, port=port, workers=2)
    worker = worker_start(env=env, concurrency=2, new_session=True)
    beat = beat_start(env=env, schedule=f"/tmp/helpdesk-faults-beat-{os.getpid()}")
    procs = [web, beat]
    client = redis.Redis.from_url(env["REDIS_URL"])
    accepted, errors, duplicates_seen = set(), {}, 0
    try:
        wait_healthy(port=port, timeout=30)
        url = f"http://127.0.0.1:{port}{channel.webhook_path}"
        loader = threading.Thread(
            target=lambda: asyncio.run(post_steadily(url, bodies, args.rate, 16, accepted, errors)),
            daemon=True,
        )
        loader.start()
        time.sleep(args.kill_after)
        kill_at = time.time()
        accepted_before_kill = set(accepted)
        if kill == "worker":
            kill_group(worker)
            worker = worker_start(env=env, concurrency=2, new_session=True)
        else:
            os.kill(web_workers(web.pid)[0], signal.SIGKILL)
        while loader.is_alive():
            duplicates_seen = max(duplicates_seen, pending_list_duplicates(client))
            loader.join(timeout=1)

        wait_until(
            lambda: not InboundEvent.objects.filter(channel=channel, status="pending").exists(), args.settle
        )
        duplicates_seen = max(duplicates_seen, pending_list_duplicates(client))

        stored = set(Message.objects.filter(channel=channel).values_list("external_id", flat=True))
        stored_count = Message.objects.filter(channel=channel).count()
        done = InboundEvent.objects.filter(channel=channel, processed_at__isnull=False)
        times = [t.timestamp() for t in done.values_list("processed_at", flat=True)]
        # Everything accepted before the kill is processed by then (if none is still pending).
        last_of_before = max(
            (
                t.timestamp()
                for t in done.filter(received_at__lte=_aware(kill_at)).values_list("processed_at", flat=True)
            ),
            default=None,
        )
        pending_before = InboundEvent.objects.filter(
            channel=channel, status="pending", received_at__lte=_aware(kill_at)
        ).exists()
        cleared_at = None if pending_before else last_of_before
        return {
            "scenario": f"inbound-{kill}",
            "webhooks": len(bodies),
            "rate_per_s": args.rate,
            "killed_after_s": args.kill_after,
            "accepted": len(accepted),
            "accepted_before_kill": len(accepted_before_kill),
            "http_errors_retried": errors,
            "lost": len(accepted - stored),
            "doubled": stored_count - len(stored),
            "stuck": InboundEvent.objects.filter(channel=channel, status="pending").count(),
            "failed_events": InboundEvent.objects.filter(channel=channel, status="failed").count(),
            "ids_queued_twice_max": duplicates_seen,
            **processing_figures(times, kill_at, cleared_at),
        }
    finally:
        processes_stop([*procs, worker])


def _aware(ts: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)


class Integrator:
    """The API channel's receiver: records each send by idempotency key, answers after a pause,
    then posts a signed status callback naming our message id (as the channel's docs ask)."""

    def __init__(self, *, hook_url: str, answer_delay: float, keeps_keys: bool):
        self.received: list[tuple[float, str]] = []
        self.repeats_dropped = 0
        self.callbacks_done = 0
        integrator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key", "")
                message_id = json.loads(body)["id"]
                if keeps_keys and any(k == key for _, k in integrator.received):
                    integrator.repeats_dropped += 1  # a repeat by key: answered, not delivered again
                else:
                    integrator.received.append((time.time(), key))
                # The integrator has the message now, whether or not our side hears the answer;
                # its status comes a moment after its own processing.
                threading.Timer(0.2, integrator._post_status, args=(message_id,)).start()
                time.sleep(answer_delay)
                payload = json.dumps({"external_id": f"ext-{message_id}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.hook_url = hook_url
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/messages"

    def _post_status(self, message_id):
        from channels_adapters.base import hmac_sha256_hex

        body = json.dumps(
            {
                "type": "status",
                "message_id": message_id,
                "external_id": f"ext-{message_id}",
                "status": "delivered",
            }
        ).encode()
        request = urllib.request.Request(
            self.hook_url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Signature": "sha256=" + hmac_sha256_hex(SECRET, body),
            },
        )
        try:
            for _ in range(20):
                try:
                    urllib.request.urlopen(request, timeout=10).read()
                    return
                except OSError:
                    time.sleep(0.5)
        finally:
            self.callbacks_done += 1


def outbound(args, env) -> dict:
    from django.contrib.auth import get_user_model

    from channels_adapters.base import Sender
    from channels_adapters.models import Channel, InboundEvent
    from conversations.models import DeliveryStatus, Direction, Message
    from conversations.services import receive_inbound, send_reply

    port = free_port()
    channel = Channel.objects.create(
        kind="api",
        name="Faults outbound",
        credentials={"secret": SECRET},
        settings={"receiver_keeps_idempotency_keys": args.receiver_keeps_keys},
    )
    integrator = Integrator(
        hook_url=f"http://127.0.0.1:{port}{channel.webhook_path}",
        answer_delay=0.15,
        keeps_keys=args.receiver_keeps_keys,
    )
    channel.credentials = {"secret": SECRET, "callback_url": integrator.url}
    channel.save()
    agent = get_user_model().objects.create(username="bench-agent")
    cases = [
        receive_inbound(
            channel=channel, sender=Sender("email", f"c{n}@example.com"), external_id=f"in-{n}", text="hi"
        ).message.case
        for n in range(20)
    ]
    web = web_start(env=env, port=port, workers=2)
    beat = beat_start(env=env, schedule=f"/tmp/helpdesk-faults-beat-{os.getpid()}")
    wait_healthy(port=port, timeout=30)
    worker = worker_start(env=env, concurrency=2, new_session=True)
    try:
        for n in range(args.replies):
            send_reply(case=cases[n % len(cases)], author_user=agent, body=f"Reply {n}")
        outgoing = Message.objects.filter(channel=channel, direction=Direction.OUT)
        wait_until(lambda: len(integrator.received) >= args.replies * args.kill_at_share, 120)
        kill_at = time.time()
        kill_group(worker)
        in_flight_at_kill = outgoing.filter(send_claimed_at__isnull=False).count()
        worker = worker_start(env=env, concurrency=2, new_session=True)

        def final():
            return not outgoing.filter(status=DeliveryStatus.QUEUED).exists()

        wait_until(final, args.settle)
        wait_until(lambda: integrator.callbacks_done >= len(integrator.received), 30)
        wait_until(lambda: not InboundEvent.objects.filter(channel=channel, status="pending").exists(), 30)
        keys = [key for _, key in integrator.received]
        statuses = dict.fromkeys(DeliveryStatus.values, 0)
        for status in outgoing.values_list("status", flat=True):
            statuses[status] += 1
        received_ids = {int(k.rsplit("-", 1)[-1]) for k in keys}
        unsettled = list(outgoing.filter(status=DeliveryStatus.UNKNOWN).values_list("pk", flat=True))
        sends_after_kill = sorted(t for t, _ in integrator.received if t > kill_at)
        return {
            "scenario": "outbound-worker",
            "receiver_keeps_idempotency_keys": args.receiver_keeps_keys,
            "replies": args.replies,
            "sends_in_flight_at_kill": in_flight_at_kill,
            "statuses": {k: v for k, v in statuses.items() if v},
            "lost": outgoing.exclude(pk__in=received_ids).exclude(status=DeliveryStatus.UNKNOWN).count(),
            "doubled": len(keys) - len(set(keys)),
            "repeats_dropped_by_key": integrator.repeats_dropped,
            "stuck": statuses[DeliveryStatus.QUEUED],
            "may_have_been_sent_unsettled": len(unsettled),
            "of_which_the_provider_never_got": len(set(unsettled) - received_ids),
            "sending_resumed_after_kill_s": round(sends_after_kill[0] - kill_at, 2)
            if sends_after_kill
            else None,
            "all_final_after_kill_s": round(time.time() - kill_at, 2) if final() else None,
        }
    finally:
        processes_stop([web, beat, worker])
        integrator.httpd.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", choices=["inbound-worker", "inbound-web", "outbound-worker", "all"], default="all"
    )
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="webhooks per second")
    parser.add_argument("--kill-after", type=float, default=8.0, help="seconds of load before the kill")
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument(
        "--kill-at-share", type=float, default=0.3, help="outbound: kill once this share is sent"
    )
    parser.add_argument(
        "--receiver-keeps-keys",
        action="store_true",
        help="outbound: the integrator drops repeats by Idempotency-Key and the channel says so",
    )
    parser.add_argument("--settle", type=float, default=60.0, help="seconds allowed to finish after the load")
    args = parser.parse_args()

    # Beat as in production but more often, so a bounded run also shows what
    # only beat recovers (a webhook committed by a web worker killed before its
    # Redis push): stated with the figures.
    env = django_bench_setup(
        db_name="helpdesk_bench_faults",
        redis_default="redis://127.0.0.1:6379/8",
        HELPDESK_REDRIVE_EVERY_SECONDS=os.environ.get("HELPDESK_REDRIVE_EVERY_SECONDS", "10"),
        HELPDESK_INBOUND_STUCK_AFTER_SECONDS=os.environ.get("HELPDESK_INBOUND_STUCK_AFTER_SECONDS", "10"),
    )
    scenarios = (
        ["inbound-worker", "inbound-web", "outbound-worker"] if args.scenario == "all" else [args.scenario]
    )
    results = []
    for scenario in scenarios:
        if scenario == "outbound-worker":
            result = outbound(args, env)
        else:
            result = inbound(args, env, kill=scenario.split("-", 1)[1])
        print(json.dumps(result, indent=2), flush=True)
        results.append(result)
    ok = all(r["lost"] == 0 and r["doubled"] == 0 and r["stuck"] == 0 for r in results)
    print("OK: 0 lost, 0 doubled, 0 stuck" if ok else "NOT OK: see the counts above")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
