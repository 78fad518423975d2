"""Email benchmark: MIME parsing, inbound processing with a long email history, IMAP polling.

1. parse: `parse_email` over the .eml fixture set (mails/s, single core).
2. ingest: N mails through `inbound_event_process` (the worker's path) on
   PostgreSQL, after seeding H historical email messages, half of the new mails
   replying to one of our sent messages by In-Reply-To and 5% repeated: mails/s,
   per-mail latency percentiles, and the check that duplicates made nothing.
3. imap (if dovecot is installed): M mails appended to a real dovecot, one
   poll + processing: mails/s.

    .venv/bin/python bench/email_ingest.py --mails 2000 --history 50000 --imap 500

Environment: DATABASE_URL (any database on the server; the benchmark creates
its own `helpdesk_bench_email` next to it) and REDIS_URL (a db it may flush).
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

from harness import database_recreate, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT / "channels_adapters" / "email" / "fixtures"


def mail(n: int, *, in_reply_to: str = "") -> bytes:
    headers = f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n" if in_reply_to else ""
    return (
        f"From: Customer {n % 500} <customer{n % 500}@example.org>\r\n"
        f"To: support@support.example.com\r\nSubject: Re: order {n}\r\n"
        f"Date: Wed, 25 Nov 2026 09:00:00 +0000\r\nMessage-ID: <bench-{n}@example.org>\r\n{headers}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello, about order {n}: where is it?\r\n\r\nBest regards,\r\nCustomer\r\n\r\n"
        "On Tue, 24 Nov 2026, Acme Support wrote:\r\n> Your order ships tomorrow.\r\n"
    ).encode()


def bench_parse(rounds: int) -> None:
    from channels_adapters.email.parsing import parse_email

    raws = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]
    started = time.perf_counter()
    for _ in range(rounds):
        for raw in raws:
            parse_email(raw)
    elapsed = time.perf_counter() - started
    count = rounds * len(raws)
    print(
        f"parse: {count} mails ({len(raws)} fixtures x {rounds}) in {elapsed:.2f}s "
        f"= {count / elapsed:.0f} mails/s"
    )


def seed_history(channel, history: int) -> list[str]:
    from django.utils import timezone

    from conversations.models import Case, Message
    from customers.models import Identity
    from customers.services import customer_create

    now = timezone.now()
    ours = []
    batch = []
    customers = []
    for c in range(200):
        customer = customer_create(name=f"Seed {c}")
        identity = Identity.objects.create(customer=customer, kind="email", address=f"seed{c}@example.net")
        case = Case.objects.create(thread=customer.thread, origin_channel=channel, opened_at=now)
        customers.append((customer, identity, case))
    for n in range(history):
        customer, identity, case = customers[n % len(customers)]
        out = n % 2 == 0
        message_id = f"<hd.seed{n}.x@support.example.com>" if out else f"<seed-{n}@example.net>"
        if out:
            ours.append(message_id)
        batch.append(
            Message(
                thread=customer.thread,
                case=case,
                channel=channel,
                identity=identity,
                direction="out" if out else "in",
                author="agent" if out else "customer",
                body="history",
                external_id=message_id,
                status="sent" if out else None,
                meta={"message_id": message_id, "subject": "seed"},
                created_at=now,
            )
        )
        if len(batch) == 5000:
            Message.objects.bulk_create(batch)
            batch = []
    Message.objects.bulk_create(batch)
    return ours


def bench_ingest(channel, mails: int, history: int) -> None:
    from django.db import connection

    from channels_adapters.models import InboundEvent
    from channels_adapters.services import inbound_event_process
    from conversations.models import Message

    started = time.perf_counter()
    ours = seed_history(channel, history)
    print(f"seeded {history} email messages in {time.perf_counter() - started:.1f}s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    rng = random.Random(5)
    numbers = list(range(mails))
    numbers += rng.sample(numbers, mails // 20)  # 5% delivered again
    rng.shuffle(numbers)
    before = Message.objects.count()
    latencies = []
    started = time.perf_counter()
    for n in numbers:
        reply_to = ours[n % len(ours)] if n % 2 == 0 and ours else ""
        event = InboundEvent.objects.create(
            channel=channel, body=mail(n, in_reply_to=reply_to), content_type="message/rfc822"
        )
        t0 = time.perf_counter()
        done = inbound_event_process(event_id=event.pk)
        latencies.append(time.perf_counter() - t0)
        assert done.status == "processed", done.error
    elapsed = time.perf_counter() - started
    created = Message.objects.count() - before
    print(
        f"ingest: {len(numbers)} mails ({mails} unique, {len(numbers) - mails} repeats), "
        f"{history} in history: "
        f"{len(numbers) / elapsed:.0f} mails/s; per mail p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {percentile(latencies, 95) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms; "
        f"messages created {created} (expected {mails}) {'OK' if created == mails else 'MISMATCH'}"
    )


def bench_imap(channel_factory, count: int) -> None:
    if not Path("/usr/sbin/dovecot").exists():
        print("imap: skipped (dovecot not installed)")
        return
    from channels_adapters.email.imap import imap_poll
    from channels_adapters.services import inbound_event_process
    from tests.imap_server import DovecotServer

    server = DovecotServer().start()
    try:
        conn = server.client()
        for n in range(count):
            conn.append("INBOX", None, None, mail(1_000_000 + n))
        conn.logout()
        channel = channel_factory(server.port)
        started = time.perf_counter()
        stored, fetched, polls = [], 0, 0
        while True:  # a poll takes at most HELPDESK_EMAIL_IMAP_BATCH mails
            result = imap_poll(channel=channel)
            polls += 1
            if not result.fetched:
                break
            fetched += result.fetched
            stored += result.stored
        polled = time.perf_counter() - started
        for pk in stored:
            inbound_event_process(event_id=pk)
        elapsed = time.perf_counter() - started
        print(
            f"imap: {fetched} mails fetched and stored in {polls} polls, {polled:.2f}s "
            f"({fetched / polled:.0f} mails/s); processed by {elapsed:.2f}s "
            f"({fetched / elapsed:.0f} mails/s end to end, one worker)"
        )
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--history", type=int, default=50000)
    parser.add_argument("--imap", type=int, default=500)
    parser.add_argument("--parse-rounds", type=int, default=200)
    args = parser.parse_args()

    url = database_recreate(
        base_url=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/helpdesk"),
        name="helpdesk_bench_email",
    )
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
    os.environ.setdefault("HELPDESK_MEDIA_ROOT", "/tmp/helpdesk-bench-email-media")
    import django

    django.setup()
    from django.core.management import call_command

    from channels_adapters.models import Channel

    call_command("migrate", verbosity=0)

    def email_channel(imap_port=9):
        return Channel.objects.create(
            kind="email",
            name=f"Bench mailbox {imap_port}",
            credentials={
                "address": "support@support.example.com",
                "imap_host": "127.0.0.1",
                "imap_port": imap_port,
                "imap_user": "support",
                "imap_password": "imap-pass-123",
                "signing_key": "bench",
            },
            settings={"imap_security": "none"},
        )

    bench_parse(args.parse_rounds)
    bench_ingest(email_channel(), args.mails, args.history)
    bench_imap(email_channel, args.imap)


if __name__ == "__main__":
    main()
