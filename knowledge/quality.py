"""How good search and the bot are on a labelled question set (tests/fixtures/kb_questions.json).

top-1 / top-3: among answerable questions, the expected article is first / in the first three.
Bot precision: among the questions the bot would answer (best score >= threshold), the share
it answers with the right article (an unanswerable question answered is a wrong answer).
Bot coverage: the share of answerable questions the bot answers correctly.
"""

from __future__ import annotations

import json
from pathlib import Path

from knowledge.search import articles_search

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "kb_questions.json"


def questions_load(path: Path = FIXTURE) -> list[dict]:
    return json.loads(path.read_text())["questions"]


def quality_measure(*, questions: list[dict]) -> list[dict]:
    """Each question with its ranked slugs and best score (search done once, thresholds later)."""
    rows = []
    for item in questions:
        hits = articles_search(query=item["q"], language=item["lang"], limit=3)
        rows.append({**item, "slugs": [h.article.slug for h in hits], "best": hits[0].score if hits else 0.0})
    return rows


def quality_report(*, rows: list[dict], threshold: float) -> dict:
    answerable = [r for r in rows if r["expected"]]
    answered = [r for r in rows if r["slugs"] and r["best"] >= threshold]
    right = [r for r in answered if r["expected"] and r["slugs"][0] == r["expected"]]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "top1": sum(1 for r in answerable if r["slugs"][:1] == [r["expected"]]) / len(answerable),
        "top3": sum(1 for r in answerable if r["expected"] in r["slugs"][:3]) / len(answerable),
        "threshold": threshold,
        "bot_answered": len(answered),
        "bot_precision": len(right) / len(answered) if answered else None,
        "bot_coverage": len(right) / len(answerable),
        "wrong": [(r["q"], r["slugs"][0], r["best"]) for r in answered if r not in right],
    }
