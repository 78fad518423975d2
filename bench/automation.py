"""Automation benchmark: what 50 active rules add to each inbound message.

Creates 50 active "message received" rules of mixed conditions (text contains
and matches, channel kind, priority, language, customer attribute, label,
business hours), then receives N messages through the real pipeline
(conversations.services.receive_inbound, PostgreSQL, Redis), and times, per
message, (a) the rules' evaluation alone (automation.rules.engine.rules_run on
the message; the rules match nothing, so no action's writes are counted) and
(b) the whole automation receiver of a message (rules + out-of-hours check).
Prints p50 / p95 / p99 in milliseconds.

    .venv/bin/python bench/automation.py --messages 2000

Environment: DATABASE_URL (the benchmark creates its own `helpdesk_bench_automation`
next to it) and REDIS_URL (a db it may flush).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from harness import django_bench_setup, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rules_create(n: int) -> None:
    from automation.models import Rule
    from conversations.models import Label

    Label.objects.get_or_create(name="vip")
    shapes = [
        [{"field": "text", "op": "contains", "value": ["chargeback", "lawsuit"]}],
        [{"field": "text", "op": "matches", "value": r"\border\s+#?\d{9}\b"}],
        [
            {"field": "channel_kind", "op": "is", "value": "whatsapp"},
            {"field": "priority", "op": "gte", "value": 3},
        ],
        [{"field": "language", "op": "is", "value": "fr"}],
        [{"field": "customer_attribute", "key": "tier", "op": "is", "value": "platinum"}],
        [
            {"field": "label", "op": "has", "value": "vip"},
            {"field": "text", "op": "contains", "value": "cancel"},
        ],
        [
            {"field": "business_hours", "op": "is", "value": False},
            {"field": "priority", "op": "is", "value": 3},
        ],
    ]
    for i in range(n):
        Rule.objects.create(
            name=f"bench rule {i}",
            position=i,
            event="message_received",
            conditions=shapes[i % len(shapes)],
            actions=[{"type": "set_priority", "priority": 3}],
        )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rules", type=int, default=50)
    args = parser.parse_args()
    django_bench_setup(db_name="helpdesk_bench_automation", redis_default="redis://127.0.0.1:6379/15")

    from automation import services
    from automation.models import RuleEvent
    from automation.rules.engine import rules_for, rules_run
    from channels_adapters.base import Sender
    from conversations.services import receive_inbound
    from conversations.signals import message_created
    from tests.factories import ChannelFactory

    rules_create(args.rules)
    # Measured by hand below, not by the receiver during ingest.
    message_created.disconnect(dispatch_uid="automation.message_created")
    channel = ChannelFactory(kind="api", name="bench api")
    assert len(rules_for(RuleEvent.MESSAGE_RECEIVED)) == args.rules

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    evaluation, receiver, queries = [], [], []
    texts = [
        "Where is my parcel?",
        "I want to change my address please",
        "Refund for my last order",
        "Hello!",
    ]
    for i in range(args.messages):
        message = receive_inbound(
            channel=channel,
            sender=Sender(kind="email", address=f"bench{i % 400}@example.com"),
            external_id=f"bench-{i}",
            text=texts[i % len(texts)],
        ).message
        case = message.case  # as the receiver gets it: the core's own object
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            fired = rules_run(event=RuleEvent.MESSAGE_RECEIVED, case=case, message=message)
            t1 = time.perf_counter()
            services.message_handle(message=message)
            t2 = time.perf_counter()
        queries.append(len(captured))
        assert not fired
        evaluation.append((t1 - t0) * 1000)
        receiver.append((t2 - t1) * 1000)

    for name, values in (("rules evaluation", evaluation), ("automation receiver", receiver)):
        print(
            f"{name:>20}: {args.rules} rules, {len(values)} messages: "
            f"p50 {percentile(values, 50):.3f} ms  p95 {percentile(values, 95):.3f} ms  "
            f"p99 {percentile(values, 99):.3f} ms  mean {statistics.mean(values):.3f} ms"
        )
    print(
        f"queries a message (evaluation + receiver): mean {statistics.mean(queries):.2f}, max {max(queries)}"
    )


if __name__ == "__main__":
    main()
