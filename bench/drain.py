"""Drain CPU benchmark: the drainer's own cost per message, in this process, no web tier.

The pipeline bench's wall figures move with whatever else shares the two cores;
this one stores API-channel events straight in the database (as the webhook
does) and runs `inbound_events_process` over them in drain batches, printing
the CPU this process spent per message (Python: the ORM, the adapters, the
after-commit work) beside the wall time (which adds PostgreSQL's and Redis's
share). Each pass offers messages from `--customers` customers picked at
random, so the first pass is mostly first contacts (a customer, a thread, a
case opened and routed) and the later ones mostly returning customers.

    .venv/bin/python bench/drain.py --messages 3000 --passes 2
    .venv/bin/python bench/drain.py --automation-rules 50 --bot

Environment: DATABASE_URL (the bench makes `helpdesk_bench_drain`, or
BENCH_DB_NAME, next to it) and REDIS_URL (a db it may flush).
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from harness import api_message_body, automation_rules_create, bot_articles_create, django_bench_setup

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000, help="per pass")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100, help="ids per drain batch (INBOUND_BATCH_SIZE)")
    parser.add_argument("--automation-rules", type=int, default=0)
    parser.add_argument("--bot", action="store_true")
    args = parser.parse_args()

    django_bench_setup(
        db_name=os.environ.get("BENCH_DB_NAME", "helpdesk_bench_drain"),
        redis_default="redis://127.0.0.1:6379/9",
    )
    from channels_adapters.models import Channel, InboundEvent
    from channels_adapters.services import inbound_events_process
    from conversations.models import Message

    channel = Channel.objects.create(
        kind="api",
        name="Bench",
        credentials={"secret": "bench-secret", "callback_url": "http://127.0.0.1:9/"},
        settings={"bot": {"mode": "always", "name": "Bench bot"}} if args.bot else {},
    )
    if args.automation_rules:
        automation_rules_create(args.automation_rules)
    if args.bot:
        bot_articles_create()
    rng = random.Random(1)
    seq, results = 0, []
    for number in range(args.passes):
        events = []
        for _ in range(args.messages):
            seq += 1
            body = api_message_body(
                external_id=f"drain-{seq}", marker=f"m{seq}", customer=rng.randrange(args.customers)
            )
            events.append(
                InboundEvent(channel=channel, body=body, headers={}, content_type="application/json")
            )
        ids = [e.pk for e in InboundEvent.objects.bulk_create(events)]
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, len(ids), args.batch):
            inbound_events_process(event_ids=ids[start : start + args.batch])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stored = Message.objects.filter(channel=channel, external_id__startswith="drain-").count()
        result = {
            "pass": number + 1,
            "messages": len(ids),
            "cpu_ms_per_message": round(cpu * 1000 / len(ids), 3),
            "wall_ms_per_message": round(wall * 1000 / len(ids), 3),
            "stored_so_far": stored,
            "failed": InboundEvent.objects.filter(status="failed").count(),
            "load_average": round(os.getloadavg()[0], 2),
        }
        results.append(result)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
