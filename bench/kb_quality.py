"""Knowledge-base quality: top-1 / top-3 accuracy of search and the bot's precision and
coverage at its threshold, on the labelled set tests/fixtures/kb_questions.json over the
demo help center (knowledge/demo_content.py).

Creates its own database `helpdesk_bench_kb_quality` next to DATABASE_URL (PostgreSQL:
the production search), seeds the demo articles, and prints the figures for a range of
thresholds, the configured one marked.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/kb_quality.py
"""

import sys
from pathlib import Path

from harness import django_bench_setup

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    django_bench_setup(db_name="helpdesk_bench_kb_quality", redis_default="redis://127.0.0.1:6379/2")
    from django.conf import settings

    from knowledge.demo import demo_articles_seed
    from knowledge.quality import quality_measure, quality_report, questions_load

    articles = demo_articles_seed()
    questions = questions_load()
    rows = quality_measure(questions=questions)
    configured = settings.KNOWLEDGE["BOT_THRESHOLD"]
    first = quality_report(rows=rows, threshold=configured)
    print(
        f"{len(articles)} articles, {first['questions']} questions "
        f"({first['answerable']} answerable, {first['questions'] - first['answerable']} not)"
    )
    print(f"search top-1: {first['top1']:.1%}   top-3: {first['top3']:.1%}")
    print("threshold  answered  precision  coverage")
    for threshold in sorted({0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, configured}):
        r = quality_report(rows=rows, threshold=threshold)
        mark = "  <- configured" if threshold == configured else ""
        precision = "-" if r["bot_precision"] is None else f"{r['bot_precision']:.1%}"
        print(f"{threshold:9.2f}  {r['bot_answered']:8d}  {precision:>9}  {r['bot_coverage']:8.1%}{mark}")
    if first["wrong"]:
        print("wrong answers at the configured threshold:")
        for question, slug, score in first["wrong"]:
            print(f"  {question!r} -> {slug} ({score:.2f})")


if __name__ == "__main__":
    main()
