"""The labelled question set keeps search and the bot at their targets (docs/knowledge.md)."""

import pytest
from django.conf import settings

from knowledge.quality import quality_measure, quality_report, questions_load


@pytest.mark.django_db
def test_search_and_bot_meet_their_targets_on_the_labelled_set(kb):
    questions = questions_load()
    assert len(questions) >= 60 and len(kb) >= 20
    assert {q["lang"] for q in questions} == {"es", "en"} and any(q["expected"] is None for q in questions)
    rows = quality_measure(questions=questions)
    report = quality_report(rows=rows, threshold=settings.KNOWLEDGE["BOT_THRESHOLD"])
    assert report["top3"] >= 0.9, report
    assert report["bot_precision"] >= 0.9, report["wrong"]
    assert report["bot_coverage"] >= 0.7, report
