"""Meta batch benchmark: one signed WhatsApp Cloud POST carrying N messages.

Meta batches up to 1,000 updates in one POST and wants an answer within
5 seconds (then retries, and disables a subscription that keeps failing). This
measures, on PostgreSQL + Redis, in process through Django's full request stack:
- the webhook answer (signature check on the raw body + storing the event),
- processing that event into messages on threads (what the worker does),
  for many distinct customers and for a few chatty ones,
- a replay of the same POST (Meta's retry): every message deduplicated.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/10 \
        .venv/bin/python bench/meta_batch.py --messages 1000 --customers 1000

Creates its own database `helpdesk_bench_meta` next to DATABASE_URL's; flushes the Redis db.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from harness import django_bench_setup

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "helpdesk_bench_meta"


def payload(n: int, customers: int, offset: int) -> bytes:
    now = int(time.time())
    messages, contacts = [], {}
    for i in range(n):
        wa_id = f"3461{(i % customers) + 1000000:07d}"
        contacts[wa_id] = {"profile": {"name": f"Customer {i % customers}"}, "wa_id": wa_id}
        messages.append(
            {
                "from": wa_id,
                "id": f"wamid.bench.{offset}.{i}",
                # Out of order on purpose: the pipeline sorts by the provider's clock.
                "timestamp": str(now - (n - i) if i % 2 else now - i),
                "type": "text",
                "text": {"body": f"Message {i}: ¿dónde está mi pedido?"},
            }
        )
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": list(contacts.values()),
        "messages": messages,
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()  # ASCII-escaped, like Meta


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--few-customers", type=int, default=20)
    args = parser.parse_args()

    env = django_bench_setup(db_name=DB_NAME, redis_default="redis://127.0.0.1:6379/10")
    import redis
    from django.test import Client

    from channels_adapters.base import hmac_sha256_hex
    from channels_adapters.models import Channel, InboundEvent
    from channels_adapters.services import inbound_event_process
    from conversations.models import Message

    secret = "bench-app-secret"
    channel = Channel.objects.create(
        kind="whatsapp",
        name="Bench WhatsApp",
        credentials={
            "phone_number_id": "106540352242922",
            "access_token": "t",
            "app_secret": secret,
            "verify_token": "v",
        },
    )
    client = Client()

    def post(body: bytes):
        headers = {"X-Hub-Signature-256": "sha256=" + hmac_sha256_hex(secret, body)}
        started = time.perf_counter()
        response = client.post(channel.webhook_path, body, content_type="application/json", headers=headers)
        answered = time.perf_counter() - started
        assert response.status_code == 200, response.content
        event_id = InboundEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
        started = time.perf_counter()
        event = inbound_event_process(event_id=event_id)
        processed = time.perf_counter() - started
        assert event.status == "processed", event.error
        return answered, processed, event.summary

    post(payload(20, 20, offset=-1))  # warm-up: connections, imports
    results = {}
    for label, customers, offset in [
        ("many_customers", args.customers, 0),
        ("few_customers", args.few_customers, 1),
    ]:
        body = payload(args.messages, customers, offset)
        answered, processed, summary = post(body)
        replay_answered, replay_processed, replay = post(body)
        results[label] = {
            "messages": args.messages,
            "customers": customers,
            "body_bytes": len(body),
            "answer_ms": round(answered * 1000, 1),
            "process_seconds": round(processed, 2),
            "messages_per_second": round(summary["messages"] / processed, 1),
            "stored": summary["messages"],
            "replay_answer_ms": round(replay_answered * 1000, 1),
            "replay_process_seconds": round(replay_processed, 2),
            "replay_duplicates": replay["duplicates"],
            "replay_stored": replay["messages"],
        }
    total = Message.objects.filter(channel=channel).count()
    results["count_check"] = {"messages_in_db": total, "expected": 2 * args.messages + 20}
    ok = total == 2 * args.messages + 20 and all(
        r["replay_stored"] == 0 and r["replay_duplicates"] == args.messages
        for k, r in results.items()
        if k != "count_check"
    )
    print(json.dumps(results, indent=2))
    for label in ("many_customers", "few_customers"):
        r = results[label]
        print(
            f"{label}: {r['messages']} messages in one POST answered in {r['answer_ms']} ms, "
            f"processed in {r['process_seconds']} s ({r['messages_per_second']} msg/s); "
            f"replay answered in {r['replay_answer_ms']} ms, {r['replay_duplicates']} duplicates, 0 new"
        )
    print(f"count check {'OK' if ok else 'FAILED'}: {total} messages stored")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"meta-batch-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=2))
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
