"""Outreach benchmark: planning a large campaign, then the send rate to a local provider.

1. `plan`: N customers (a phone and an email each, bulk-written), a campaign
   with a two-step chain (SMS, then email) on a segment matching all of them
   but a tenth; timed: the segment count query, and `campaign_plan` (one
   planned outreach + two step rows per customer).
2. `send`: a real Celery worker (prefork) sends the first steps of S released
   outreaches to a local HTTP server speaking Twilio's Messages API (201 with
   a message resource, a new SID each); timed: from the release to the last
   message recorded as sent, with the campaign's throttle set high enough not
   to bind (`--rate`), or to a limit you choose to check it holds.
Printed: rows, seconds, rows/s, messages/s, and the checks (every step sent
once, none twice: provider requests == messages).

    .venv/bin/python bench/outreach.py --customers 100000 --send 2000

Environment: DATABASE_URL (creates `helpdesk_bench_outreach` next to it), REDIS_URL (a db it flushes).
"""

import argparse
import itertools
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import django_bench_setup, free_port, processes_stop, worker_start

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class TwilioStandIn:
    """POST .../Messages.json -> 201 with a fresh SID; counts requests."""

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()
        sids = itertools.count(1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    server.count += 1
                    sid = f"SMbench{next(sids):010d}"
                body = json.dumps(
                    {
                        "sid": sid,
                        "status": "queued",
                        "error_code": None,
                        "error_message": None,
                        "num_segments": "1",
                    }
                ).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def customers_write(n: int) -> None:
    from django.db import connection

    # One INSERT ... SELECT per table: the bench measures planning, not the factories.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_customer (name, attributes, created_at)
            SELECT 'Customer ' || g,
                   jsonb_build_object('plan', CASE WHEN g %% 10 = 0 THEN 'free' ELSE 'pro' END,
                                      'language', CASE WHEN g %% 3 = 0 THEN 'en' ELSE 'es' END),
                   now()
            FROM generate_series(1, %s) AS g
            """,
            [n],
        )
        cursor.execute(
            "INSERT INTO conversations_thread (customer_id, created_at, last_message_at) "
            "SELECT id, now(), now() - interval '10 days' FROM customers_customer"
        )
        cursor.execute(
            "INSERT INTO customers_identity (customer_id, kind, address, display_name, created_at) "
            "SELECT id, 'phone', '+3460' || lpad(id::text, 7, '0'), '', now() FROM customers_customer"
        )
        cursor.execute(
            "INSERT INTO customers_identity (customer_id, kind, address, display_name, created_at) "
            "SELECT id, 'email', 'c' || id || '@example.com', '', now() FROM customers_customer"
        )
        cursor.execute("ANALYZE")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--send", type=int, default=2000, help="outreaches released for the send phase")
    parser.add_argument("--rate", type=float, default=100_000.0, help="campaign throttle for SMS, msg/s")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    args = parser.parse_args()

    twilio = TwilioStandIn()
    env = django_bench_setup(
        db_name="helpdesk_bench_outreach",
        redis_default="redis://127.0.0.1:6379/9",
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{twilio.port}",
        HELPDESK_OUTREACH_QUIET_HOURS="",
    )
    from django.conf import settings

    settings.TWILIO_API_BASE_URL = env["TWILIO_API_BASE_URL"]
    settings.OUTREACH["QUIET_HOURS"] = ""

    from channels_adapters.models import Channel
    from conversations.models import DeliveryStatus, Message
    from outreach import campaigns
    from outreach.models import Campaign, CampaignMessage, CampaignStep, Outreach, OutreachStep

    started = time.perf_counter()
    customers_write(args.customers)
    print(
        f"customers written: {args.customers:,} in {time.perf_counter() - started:.1f} s (setup, not timed)"
    )

    sms = Channel.objects.create(
        kind="sms",
        name="SMS",
        credentials={"account_sid": "ACbench", "auth_token": "bench-token", "phone_number": "+14155550100"},
        settings={"cost_per_message": "0.05"},
    )
    email = Channel.objects.create(
        kind="email", name="Mail", credentials={"address": "support@example.com", "smtp_host": "127.0.0.1"}
    )
    campaign = Campaign.objects.create(
        name="Bench",
        segment={"attributes": {"plan": "pro"}},
        throttle={"sms": args.rate},
        default_language="es",
    )
    CampaignMessage.objects.create(campaign=campaign, language="es", body="¡Tu pedido ha salido!")
    CampaignMessage.objects.create(campaign=campaign, language="en", body="Your order shipped!")
    CampaignStep.objects.create(
        campaign=campaign, number=1, channel=sms, advance_on="undelivered", wait_minutes=30
    )
    CampaignStep.objects.create(
        campaign=campaign, number=2, channel=email, advance_on="failed", wait_minutes=0
    )

    t = time.perf_counter()
    matched = campaigns.segment_customers(campaign.segment).count()
    segment_s = time.perf_counter() - t
    t = time.perf_counter()
    planned = campaigns.campaign_plan(campaign=campaign)
    plan_s = time.perf_counter() - t
    steps = OutreachStep.objects.filter(outreach__campaign=campaign).count()
    print(f"segment query: {matched:,} customers in {segment_s * 1000:.0f} ms")
    print(
        f"planning: {planned:,} outreaches + {steps:,} steps in {plan_s:.1f} s "
        f"({(planned + steps) / plan_s:,.0f} rows/s)"
    )

    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    worker = worker_start(env=env, concurrency=args.celery_concurrency)
    try:
        time.sleep(4)  # the worker's boot, not the sends
        t = time.perf_counter()
        released = campaigns.campaign_release(campaign=campaign, limit=args.send)
        release_s = time.perf_counter() - t
        target = Message.objects.filter(outreach_step__outreach__campaign=campaign)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            sent = target.filter(status=DeliveryStatus.SENT).count()
            if sent >= released:
                break
            time.sleep(0.2)
        total_s = time.perf_counter() - t
    finally:
        processes_stop([worker])
    sent = target.filter(status=DeliveryStatus.SENT).count()
    messages = target.count()
    print(f"release: {released:,} outreaches claimed (messages written) in {release_s:.1f} s")
    print(
        f"send: {sent:,} of {released:,} SMS sent in {total_s:.1f} s from the release "
        f"({sent / total_s:,.0f} msg/s)"
    )
    print(
        f"checks: messages {messages:,}, provider requests {twilio.count:,}, "
        f"doubled {max(0, twilio.count - messages)}, still planned "
        f"{Outreach.objects.filter(campaign=campaign, status='planned').count():,}"
    )


if __name__ == "__main__":
    main()
