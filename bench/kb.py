"""Knowledge-base speed: search over 10,000 articles, and the bot's added time per inbound message.

Creates its own database `helpdesk_bench_kb` next to DATABASE_URL, seeds the 24 demo
articles plus synthetic ones (Spanish and English, bodies of ~120 words drawn from the
demo's vocabulary and from a topic vocabulary of each article's own) indexed through the real path
(knowledge.search.articles_index), then measures:

- search: articles_search for the labelled questions (tests/fixtures/kb_questions.json),
  over and over; p50 / p95 (target p95 < 50 ms);
- the bot: each inbound message (a question, then half of the time a "yes") through
  receive_inbound on a channel with the bot on; the bot's own time (its receiver, inline
  after commit, including queueing its answer) p50 / p95 (target p95 < 20 ms).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/kb.py
    .venv/bin/python bench/kb.py --articles 2000 --searches 300 --messages 100   # quicker
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from harness import django_bench_setup, percentile

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


def bench_bot(messages: int, rng: random.Random) -> tuple[list[float], dict]:
    from channels_adapters.base import Sender
    from conversations.services import receive_inbound
    from knowledge import receivers
    from knowledge.quality import questions_load
    from tests.factories import ChannelFactory

    times, outcomes = [], {}
    original = receivers.on_message_created

    def timed(sender, message, **kwargs):
        started = time.perf_counter()
        original(sender, message, **kwargs)
        if message.direction == "in":  # the customer's messages: the bot's own lines cost ~0
            times.append((time.perf_counter() - started) * 1000)

    from conversations.signals import message_created

    message_created.disconnect(dispatch_uid="knowledge.bot")
    message_created.connect(timed, dispatch_uid="knowledge.bot.timed")
    channel = ChannelFactory(settings={"bot": {"mode": "always", "name": "Bench"}})
    questions = questions_load()
    # Once per process, not per message: the language models' loading, the URL resolver.
    from knowledge.text import detect_language

    detect_language("warm up the detector", fallback="en")
    for i in range(5):
        receive_inbound(
            channel=channel, sender=Sender("api", f"warm-{i}"), external_id=f"w{i}", text=questions[i]["q"]
        )
    times.clear()
    for i in range(messages):
        q = questions[i % len(questions)]
        sender = Sender("api", f"bench-{i}")
        message = receive_inbound(channel=channel, sender=sender, external_id=f"q{i}", text=q["q"]).message
        if rng.random() < 0.5:
            receive_inbound(channel=channel, sender=sender, external_id=f"a{i}", text="yes")
        from knowledge.models import BotSession

        state = BotSession.objects.filter(case_id=message.case_id).values_list("state", flat=True).first()
        outcomes[state] = outcomes.get(state, 0) + 1
    return times, outcomes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    django_bench_setup(db_name="helpdesk_bench_kb", redis_default="redis://127.0.0.1:6379/2")
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
    bot, outcomes = bench_bot(args.messages, rng)
    print(
        f"bot per inbound message ({len(bot)} messages): p50 {statistics.median(bot):.1f} ms, "
        f"p95 {percentile(bot, 95):.1f} ms, max {max(bot):.1f} ms  (target p95 < 20 ms); cases: {outcomes}"
    )


if __name__ == "__main__":
    main()
