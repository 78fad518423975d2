"""Outbound webhooks benchmark: deliveries per second to a local receiver through a real Celery worker.

Events come from the real services (`receive_inbound` on an API channel: for
each customer a customer.created, a case.opened and one message.created per
message), written to the outbox with each message. A local receiver on
127.0.0.1 verifies every request with the `standardwebhooks` library and
answers 200 (or 500 to a share of first tries, `--fail-share`, to put
retries and the per-case order on the path). Two phases, each on fresh rows:

- `backlog`: the events are recorded with no worker running (a broker
  backlog, or a receiver back after an outage); then the worker starts and
  the time until every delivery is delivered is measured.
- `live`: the worker runs while the events are recorded; measured are the
  rate and the lag from the change's commit to the receiver's 2xx.

Printed: deliveries, deliveries/s, lag percentiles, attempts, and the checks:
every delivery received once (by webhook-id and subscription), signatures
all valid, and per subscription and ordering key the receiver saw the
events in the order they were committed.

    .venv/bin/python bench/webhooks_out.py --customers 300 --messages 4 --subscriptions 2

Environment: DATABASE_URL (the benchmark creates `helpdesk_bench_webhooks_out`
next to it) and REDIS_URL (a db it flushes).
"""

import argparse
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import django_bench_setup, free_port, percentile, processes_stop, worker_start

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Receiver:
    """Plays the integrator: verifies the signature, records arrival order, answers 200 or 500."""

    def __init__(self, *, fail_share: float):
        self.lock = threading.Lock()
        self.secrets: dict[str, str] = {}  # path -> secret
        self.arrivals: list[tuple[str, str, float]] = []  # (path, webhook-id, at) of 2xx answers
        self.failed_first: set[tuple[str, str]] = set()
        self.bad_signatures = 0
        self.requests = 0
        receiver = self
        rng = random.Random(7)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the second
            # waits for the sender's delayed ACK (40 ms), which would be timed
            # as ours. Real receivers (any production HTTP server) set it too.
            disable_nagle_algorithm = True

            def do_POST(self):
                from standardwebhooks import Webhook
                from standardwebhooks.webhooks import WebhookVerificationError

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    Webhook(receiver.secrets[self.path]).verify(body, headers, json_parse=False)
                    valid = True
                except (WebhookVerificationError, KeyError):
                    valid = False
                key = (self.path, headers.get("webhook-id", ""))
                with receiver.lock:
                    receiver.requests += 1
                    if not valid:
                        receiver.bad_signatures += 1
                    fail = valid and key not in receiver.failed_first and rng.random() < fail_share
                    if fail:
                        receiver.failed_first.add(key)
                    elif valid:
                        receiver.arrivals.append((*key, time.time()))
                status = 500 if fail or not valid else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"


def record_events(*, channel, customers: int, messages: int, prefix: str) -> float:
    """The real inbound path writes the events; returns how long it took."""
    from channels_adapters.base import Sender
    from conversations.services import receive_inbound

    started = time.perf_counter()
    for m in range(messages):
        for c in range(customers):
            receive_inbound(
                channel=channel,
                sender=Sender("email", f"{prefix}-{c}@example.com"),
                external_id=f"{prefix}-{c}-{m}",
                text=f"Message {m} of customer {c}",
            )
    return time.perf_counter() - started


def wait_delivered(rows, timeout: float) -> bool:
    from integrations.models import DeliveryStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not rows.filter(status=DeliveryStatus.PENDING).exists():
            return True
        time.sleep(0.2)
    return False


def figures(*, phase: str, rows, receiver: Receiver, started_at: float, recording_s: float) -> dict:
    from django.db.models import Count, Max

    from integrations.models import WebhookAttempt

    deliveries = list(
        rows.values("pk", "subscription__url", "event_id", "ordering_key", "created_at", "delivered_at")
    )
    path_of = {d["pk"]: "/" + d["subscription__url"].split("/", 3)[3] for d in deliveries}
    by_id = {(path_of[d["pk"]], d["event_id"]): d for d in deliveries}
    with receiver.lock:
        arrivals = [a for a in receiver.arrivals if (a[0], a[1]) in by_id]
    seen: dict[tuple[str, str], int] = {}
    for path, event_id, _at in arrivals:
        seen[(path, event_id)] = seen.get((path, event_id), 0) + 1
    # Order: within a line the receiver's successful arrivals are in delivery id order.
    last_in_line: dict[tuple[str, str], int] = {}
    out_of_order = 0
    for path, event_id, _at in arrivals:
        d = by_id[(path, event_id)]
        line = (path, d["ordering_key"])
        if d["pk"] < last_in_line.get(line, 0):
            out_of_order += 1
        last_in_line[line] = max(d["pk"], last_in_line.get(line, 0))
    delivered = [d for d in deliveries if d["delivered_at"]]
    finished = max(d["delivered_at"] for d in delivered).timestamp() if delivered else started_at
    lag_ms = [(d["delivered_at"] - d["created_at"]).total_seconds() * 1000 for d in delivered]
    attempts = WebhookAttempt.objects.filter(delivery__in=rows).aggregate(n=Count("pk"), last=Max("at"))
    elapsed = finished - started_at
    return {
        "phase": phase,
        "deliveries": len(deliveries),
        "delivered": len(delivered),
        "lines": len({(path_of[d["pk"]], d["ordering_key"]) for d in deliveries}),
        "events_recorded_in_s": round(recording_s, 2),
        "delivery_seconds": round(elapsed, 2),
        "deliveries_per_second": round(len(delivered) / elapsed, 1) if elapsed > 0 else None,
        "lag_ms": {
            "p50": round(percentile(lag_ms, 50), 1),
            "p95": round(percentile(lag_ms, 95), 1),
            "p99": round(percentile(lag_ms, 99), 1),
        }
        if lag_ms
        else None,
        "attempts": attempts["n"],
        "retried_first_tries": len([k for k in receiver.failed_first if k in by_id]),
        "checks": {
            "missing": len([k for k in by_id if k not in seen]),
            "received_twice": len([k for k, n in seen.items() if n > 1]),
            "bad_signatures": receiver.bad_signatures,
            "out_of_order": out_of_order,
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--messages", type=int, default=4, help="messages per customer")
    parser.add_argument("--subscriptions", type=int, default=2)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--fail-share", type=float, default=0.0, help="share of first tries answered 500")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    env = django_bench_setup(
        db_name="helpdesk_bench_webhooks_out",
        redis_default="redis://127.0.0.1:6379/9",
        HELPDESK_WEBHOOK_BACKOFF_SECONDS="0.5",
        HELPDESK_WEBHOOK_BACKOFF_MAX_SECONDS="2",
        HELPDESK_WEBHOOK_PAUSE_AFTER_FAILURES="1000000",
    )
    from channels_adapters.models import Channel
    from integrations.models import Event, WebhookDelivery
    from integrations.services import subscription_create

    receiver = Receiver(fail_share=args.fail_share)
    for n in range(args.subscriptions):
        path = f"/hook/{n}"
        subscription = subscription_create(url=receiver.url(path), events=list(Event.values))
        receiver.secrets[path] = subscription.secret
    channel = Channel.objects.create(
        kind="api", name="Bench API", credentials={"secret": "bench", "callback_url": receiver.url("/unused")}
    )
    procs = []
    results = []
    try:
        # Backlog: recorded with no worker, then drained.
        recording = record_events(
            channel=channel, customers=args.customers, messages=args.messages, prefix="b"
        )
        rows = WebhookDelivery.objects.all()
        started_at = time.time()
        procs.append(worker_start(env=env, concurrency=args.celery_concurrency))
        ok = wait_delivered(rows, args.timeout)
        results.append(
            figures(
                phase="backlog", rows=rows, receiver=receiver, started_at=started_at, recording_s=recording
            )
        )
        # Live: the worker runs while the events are recorded.
        first_live = (WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        started_at = time.time()
        recording = record_events(
            channel=channel, customers=args.customers, messages=args.messages, prefix="l"
        )
        rows = WebhookDelivery.objects.filter(pk__gte=first_live)
        ok = wait_delivered(rows, args.timeout) and ok
        results.append(
            figures(phase="live", rows=rows, receiver=receiver, started_at=started_at, recording_s=recording)
        )
    finally:
        processes_stop(procs)
        receiver.httpd.shutdown()

    print(json.dumps({"args": vars(args), "results": results}, indent=2))
    for r in results:
        checks = r["checks"]
        good = r["delivered"] == r["deliveries"] and not any(checks.values())
        ok = ok and good
        lag = r["lag_ms"] or {}
        print(
            f"{r['phase']}: {r['delivered']} of {r['deliveries']} deliveries in {r['delivery_seconds']} s = "
            f"{r['deliveries_per_second']}/s; lag p50 {lag.get('p50')} ms, p95 {lag.get('p95')} ms, "
            f"p99 {lag.get('p99')} ms; {r['attempts']} attempts; checks {'OK' if good else 'FAILED'} {checks}"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"webhooks_out-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
