"""Knowledge-base speed: search over 10,000 articles; the bot's added time per inbound message
and how soon its answer is stored.

Creates its own database `helpdesk_bench_kb` next to DATABASE_URL, seeds the 24 demo
articles plus synthetic ones (Spanish and English, bodies of ~120 words drawn from the
demo's vocabulary and from a topic vocabulary of each article's own) indexed through the real path
(knowledge.search.articles_index), then measures:

- search: articles_search for the labelled questions (tests/fixtures/kb_questions.json),
  over and over; p50 / p95 (target p95 < 50 ms);
- the bot, with a real Celery worker (a subprocess, prefork, 2 processes) taking its turns
  and sending its answers to the API channel's callback (a local HTTP server answering 200):
  each inbound message (a question, then half of the time a "yes" once the answer is
  stored, as a customer would) through receive_inbound and its after-commit hooks, on a
  channel with the bot on and, interleaved, one with it off:
  (a) the receive path's time, bot on and bot off, and the bot receiver's own time (the
      added time per inbound message: record the turn, queue it), p50 / p95 (target
      p95 < 20 ms);
  (b) from the customer's message committed to the worker's turn committed (its answer,
      resolution or handover stored: the latency the customer sees), p50 / p95, from the
      commit's wall-clock time here to the turn's done_at there (same machine, same clock).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/kb.py
    .venv/bin/python bench/kb.py --articles 2000 --searches 300 --messages 100   # quicker
    .venv/bin/python bench/kb.py --db-name helpdesk_bench_kb_2   # beside another run
"""

import argparse
import random
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import django_bench_setup, percentile, worker_start

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fill(n: int, rng: random.Random) -> None:
    from knowledge.demo import demo_articles_seed
    from knowledge.demo_content import ARTICLES
    from knowledge.models import Article, ArticleStatus
    from knowledge.search import articles_index
    from knowledge.text import words

    demo_articles_seed()
    vocab = {"es": [], "en": []}
    for _topic, _category, versions in ARTICLES:
        for lang, (_slug, title, keywords, _summary, body) in versions.items():
            vocab[lang] += words(f"{title} {keywords} {body}")
    # A vocabulary of its own per article (its product and topic words), mixed with the
    # demo's: as in a real KB, everyday words are shared and most others are not.
    pseudo = [
        "".join(rng.choice("bcdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 4)))
        for _ in range(20_000)
    ]
    batch = []
    for i in range(n):
        lang = "es" if i % 2 else "en"
        pick = vocab[lang]
        topic = rng.sample(pseudo, 12)
        title = " ".join([rng.choice(pick), rng.choice(pick), *rng.sample(topic, 3)]).capitalize()
        body = " ".join(rng.choice(pick) if rng.random() < 0.4 else rng.choice(topic) for _ in range(120))
        keywords = ", ".join([rng.choice(pick), *rng.sample(topic, 3)])
        batch.append(
            Article(
                title=title[:200], slug=f"synthetic-{i}", language=lang, body=body, keywords=keywords,
                status=ArticleStatus.PUBLISHED,
            )
        )  # fmt: skip
        if len(batch) == 1000:
            articles_index(article_ids=[a.pk for a in Article.objects.bulk_create(batch)])
            batch = []
    if batch:
        articles_index(article_ids=[a.pk for a in Article.objects.bulk_create(batch)])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE knowledge_article; ANALYZE knowledge_searchword")


def bench_search(runs: int) -> list[float]:
    from knowledge.quality import questions_load
    from knowledge.search import articles_search

    questions = questions_load()
    for q in questions[:10]:  # warm the caches and the connection
        articles_search(query=q["q"], language=q["lang"], limit=5)
    times = []
    for i in range(runs):
        q = questions[i % len(questions)]
        started = time.perf_counter()
        articles_search(query=q["q"], language=q["lang"], limit=5)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _receive(channel, sender, external_id: str, text: str):
    """One inbound message as the intake writes it: its transaction, then its after-commit
    hooks (every app's receivers, the bot's queueing). Returns the message, the receive
    path's time in ms and the wall-clock time of the commit."""
    from django.db import transaction

    from conversations.services import receive_inbound

    marks = {}
    started = time.perf_counter()
    with transaction.atomic():
        # First in line after the commit: before every receiver of the message.
        transaction.on_commit(lambda: marks.setdefault("committed", time.time()))
        message = receive_inbound(channel=channel, sender=sender, external_id=external_id, text=text).message
    return message, (time.perf_counter() - started) * 1000, marks["committed"]


def _turn_stored(message_id: int, timeout: float = 30.0) -> tuple[float, str]:
    """Wait for the worker's turn on the message: when it was stored (the turn's done_at, set
    in its transaction just before the commit) and its outcome. Polled every 10 ms: the bench
    must not take the two cores from the worker it measures."""
    from knowledge.models import BotTurn

    done = BotTurn.objects.filter(message_id=message_id, done_at__isnull=False)
    done = done.values_list("done_at", "outcome")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = done.first()
        if row is not None:
            return row[0].timestamp(), row[1]
        time.sleep(0.01)
    raise RuntimeError(f"the worker did not take the bot's turn on message {message_id} in {timeout} s")


class CallbackSink:
    """The API channel's callback URL: answers every delivery at once, as a customer's system would,
    so the worker's sends of the bot's answers cost what a real send costs and never retry."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's spelling
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass  # the figures only

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def bench_bot(messages: int, rng: random.Random, callback_url: str) -> dict:
    """Per question, on a channel with the bot on and one with it off, interleaved (same load):
    the receive path's time; the bot receiver's own time; with the bot on, the time from the
    commit to the worker's answer stored. The customer's "yes" comes after the answer, as it would."""
    from channels_adapters.base import Sender
    from conversations.signals import message_created
    from knowledge import receivers
    from knowledge.quality import questions_load
    from knowledge.text import detect_language
    from tests.factories import ChannelFactory

    own = []
    original = receivers.on_message_created

    def timed(sender, message, **kwargs):
        started = time.perf_counter()
        original(sender, message, **kwargs)
        if message.direction == "in":  # the customer's messages: the bot's own lines cost ~0
            own.append((time.perf_counter() - started) * 1000)

    message_created.disconnect(dispatch_uid="knowledge.bot")
    message_created.connect(timed, dispatch_uid="knowledge.bot.timed")
    credentials = {"secret": "bench-secret", "callback_url": callback_url}
    on = ChannelFactory(credentials=credentials, settings={"bot": {"mode": "always", "name": "Bench"}})
    off = ChannelFactory(credentials=credentials)
    questions = questions_load()
    # Once per process, not per message: the language models' loading, the URL resolver;
    # and the worker up and warm (its first turns load the same).
    detect_language("warm up the detector", fallback="en")
    for i in range(5):
        message, _ms, _at = _receive(on, Sender("api", f"warm-{i}"), f"w{i}", questions[i]["q"])
        _turn_stored(message.pk, timeout=120)
        _receive(off, Sender("api", f"warm-off-{i}"), f"wo{i}", questions[i]["q"])
    own.clear()
    on_ms, off_ms, latency, outcomes = [], [], [], {}

    def bot_on(sender, external_id, text):
        message, ms, committed = _receive(on, sender, external_id, text)
        on_ms.append(ms)
        stored, outcome = _turn_stored(message.pk)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome != "silent":
            latency.append((stored - committed) * 1000)

    for i in range(messages):
        q = questions[i % len(questions)]
        yes = rng.random() < 0.5
        bot_on(Sender("api", f"bench-{i}"), f"q{i}", q["q"])
        off_ms.append(_receive(off, Sender("api", f"off-{i}"), f"oq{i}", q["q"])[1])
        if yes:
            bot_on(Sender("api", f"bench-{i}"), f"a{i}", "yes")
            off_ms.append(_receive(off, Sender("api", f"off-{i}"), f"oa{i}", "yes")[1])
    return {"on": on_ms, "off": off_ms, "own": own, "latency": latency, "outcomes": outcomes}


def _figures(values) -> str:
    return (
        f"p50 {statistics.median(values):.1f} ms, p95 {percentile(values, 95):.1f} ms, "
        f"max {max(values):.1f} ms"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--db-name", default="helpdesk_bench_kb", help="its own database, dropped first")
    parser.add_argument("--worker-nice", type=int, default=0, help="the worker's CPU priority (nice)")
    parser.add_argument(
        "--worker-concurrency", type=int, default=2, help="worker processes (Celery's default: the cores)"
    )
    args = parser.parse_args()
    env = django_bench_setup(db_name=args.db_name, redis_default="redis://127.0.0.1:6379/2")
    rng = random.Random(14)
    started = time.perf_counter()
    fill(args.articles, rng)
    from knowledge.models import Article

    print(f"{Article.objects.count():,} articles indexed in {time.perf_counter() - started:.1f} s")
    search = bench_search(args.searches)
    print(
        f"search ({len(search)} queries): p50 {statistics.median(search):.1f} ms, "
        f"p95 {percentile(search, 95):.1f} ms, max {max(search):.1f} ms  (target p95 < 50 ms)"
    )
    # The bot's turns, and the sends of its answers, are a real Celery worker's, as in production.
    worker = worker_start(env=env, concurrency=args.worker_concurrency, nice=args.worker_nice)
    sink = CallbackSink()
    try:
        bot = bench_bot(args.messages, rng, sink.url)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        sink.httpd.shutdown()
    added = statistics.median(bot["on"]) - statistics.median(bot["off"])
    print(f"receive path, bot on  ({len(bot['on'])} messages): {_figures(bot['on'])}")
    print(f"receive path, bot off ({len(bot['off'])} messages): {_figures(bot['off'])}")
    print(
        f"bot's added time per inbound message: its receiver {_figures(bot['own'])}; "
        f"on - off at p50 {added:.1f} ms, at p95 "
        f"{percentile(bot['on'], 95) - percentile(bot['off'], 95):.1f} ms  (target p95 < 20 ms)"
    )
    print(
        f"customer's message committed -> bot's answer stored by the worker "
        f"({len(bot['latency'])} answers): {_figures(bot['latency'])}; turns: {bot['outcomes']}"
    )


if __name__ == "__main__":
    main()
