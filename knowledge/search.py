"""Searching the knowledge base.

PostgreSQL: a stored tsvector per article (title weight A, keywords B, body C)
built with the article's own text-search configuration (kb_es / kb_en: Spanish
or English stemming after unaccent, made by migration 0002), queried with
websearch_to_tsquery. Each query word the articles never use is first replaced
by the most similar word they do use (pg_trgm), so "reembolzo" finds
"reembolso". SQLite (the demo): the same shape in Python, cruder stemming.

The score is in [0, 1]; the bot trusts it from settings.KNOWLEDGE["BOT_THRESHOLD"].
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from knowledge.models import Article, ArticleStatus, SearchWord
from knowledge.text import WORD, unaccent, words

CONFIGS = {"es": "kb_es", "en": "kb_en"}
# How much of the score the matched share of query words brings, and how much the
# title (and keywords) matching brings: a question answered by the title is the best sign.
MAX_QUERY_WORDS = 24
TYPO_SIMILARITY = 0.4
# Articles the full-text index hands over for the final scoring.
CANDIDATES = 30


@dataclass
class Hit:
    article: Article
    score: float


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def articles_index(*, article_ids) -> None:
    """Refresh the stored search fields (and the typo vocabulary) of these articles."""
    ids = list(article_ids)
    if not ids:
        return
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE knowledge_article SET
                  search_vector =
                    setweight(to_tsvector(c.cfg, title), 'A')
                    || setweight(to_tsvector(c.cfg, keywords), 'B')
                    || setweight(to_tsvector(c.cfg, body), 'C'),
                  title_vector =
                    setweight(to_tsvector(c.cfg, title), 'A') || setweight(to_tsvector(c.cfg, keywords), 'B'),
                  search_terms = lower(unaccent(title || ' ' || keywords))
                FROM (SELECT id AS cid,
                        (CASE language WHEN 'es' THEN 'kb_es' ELSE 'kb_en' END)::regconfig AS cfg
                      FROM knowledge_article WHERE id = ANY(%s)) AS c
                WHERE knowledge_article.id = c.cid
                """,
                [ids],
            )
            cursor.execute(
                """
                INSERT INTO knowledge_searchword (word)
                SELECT DISTINCT w FROM knowledge_article a,
                  regexp_split_to_table(lower(unaccent(a.title || ' ' || a.keywords || ' ' || a.body)),
                                        '[^a-z0-9ñ]+') AS w
                WHERE a.id = ANY(%s) AND length(w) BETWEEN 3 AND 60
                ON CONFLICT DO NOTHING
                """,
                [ids],
            )
        return
    vocabulary = set()
    for article in Article.objects.filter(pk__in=ids):
        terms = unaccent(f"{article.title} {article.keywords}")
        Article.objects.filter(pk=article.pk).update(search_terms=terms)
        vocabulary.update(
            w for w in words(f"{article.title} {article.keywords} {article.body}") if 3 <= len(w) <= 60
        )
    SearchWord.objects.bulk_create([SearchWord(word=w) for w in vocabulary], ignore_conflicts=True)


def _corrected(query: str) -> tuple[str, int]:
    """The query with each unknown word replaced by its nearest known one; and its word count."""
    tokens = words(query)[:MAX_QUERY_WORDS]
    if not tokens:
        return "", 0
    if _postgres():
        with connection.cursor() as cursor:
            # One round trip: each word keeps itself when known, else takes its closest
            # known word (the GiST trigram index's nearest neighbour) when close enough.
            cursor.execute(
                """
                SELECT t.n, COALESCE(
                  -- BETWEEN: a range only the primary key's btree answers; for "=" the
                  -- planner may pick the trigram index, ten times slower for an exact word.
                  (SELECT word FROM knowledge_searchword WHERE word BETWEEN t.w AND t.w),
                  (SELECT n.word FROM (
                     SELECT word FROM knowledge_searchword WHERE length(t.w) >= 4
                     ORDER BY word <-> t.w LIMIT 1) AS n
                   WHERE similarity(n.word, t.w) >= %s),
                  t.w)
                FROM unnest(%s::text[]) WITH ORDINALITY AS t(w, n) ORDER BY t.n
                """,
                [TYPO_SIMILARITY, tokens],
            )
            fixed = [row[1] for row in cursor.fetchall()]
    else:
        fixed = _corrected_python(tokens)
    return " ".join(fixed), len(tokens)


def _corrected_python(tokens: list[str]) -> list[str]:
    import difflib

    known = set(SearchWord.objects.filter(word__in=tokens).values_list("word", flat=True))
    unknown = [t for t in tokens if t not in known and len(t) >= 4]
    if not unknown:
        return tokens
    vocabulary = list(SearchWord.objects.values_list("word", flat=True)[:50_000])
    fixes = {}
    for token in unknown:
        close = difflib.get_close_matches(token, vocabulary, n=1, cutoff=0.8)
        if close:
            fixes[token] = close[0]
    return [fixes.get(t, t) for t in tokens]


def articles_search(*, query: str, language: str, limit: int = 5, published_only: bool = True) -> list[Hit]:
    """The best articles for a question, best first, each with a score in [0, 1]."""
    query = (query or "").strip()[:1000]
    if language not in CONFIGS or not query:
        return []
    corrected, count = _corrected(query)
    if not corrected:
        return []
    if _postgres():
        scored = _search_postgres(corrected, language, limit, published_only)
    else:
        scored = _search_python(corrected, language, limit, published_only)
    articles = Article.objects.select_related("category").in_bulk([pk for pk, _ in scored])
    return [Hit(articles[pk], round(score, 4)) for pk, score in scored if pk in articles]


def _search_postgres(corrected: str, language: str, limit: int, published_only: bool):
    cfg = CONFIGS[language]
    status = "AND a.status = 'published'" if published_only else ""
    with connection.cursor() as cursor:
        # Candidates: any query word in the title or keywords (a paraphrase rarely uses
        # every word), or every query word anywhere (websearch's own AND). Both through
        # GIN indexes; only the best few are then scored in full.
        cursor.execute(
            f"""
            WITH q AS (
              SELECT websearch_to_tsquery(%(cfg)s::regconfig, %(q)s) AS strict,
                     NULLIF(replace(websearch_to_tsquery(%(cfg)s::regconfig, %(q)s)::text, ' & ', ' | '),
                            '')::tsquery AS loose
            ), c AS (
              SELECT a.id, a.search_terms,
                     ts_rank('{{0, 0.25, 0.5, 1}}', a.search_vector, q.loose, 0) AS rank_all,
                     ts_rank('{{0, 0, 0, 1}}', a.title_vector, q.loose, 0) AS rank_title,
                     (a.search_vector @@ q.strict) AS all_words
              FROM knowledge_article a, q
              WHERE q.loose IS NOT NULL AND a.language = %(lang)s {status}
                AND (a.title_vector @@ q.loose OR a.search_vector @@ q.strict)
              ORDER BY rank_all DESC, a.id
              LIMIT %(pool)s
            )
            SELECT c.id, c.rank_all, c.rank_title, c.all_words, similarity(%(q)s, c.search_terms) FROM c
            """,
            {"cfg": cfg, "q": corrected, "lang": language, "pool": max(limit, CANDIDATES)},
        )
        rows = cursor.fetchall()
    scored = [
        (pk, _score(rank_all, rank_title, all_words, close))
        for pk, rank_all, rank_title, all_words, close in rows
    ]
    scored.sort(key=lambda row: (-row[1], row[0]))
    return scored[:limit]


def _score(rank_all: float, rank_title: float, all_words: bool, close: float) -> float:
    # ts_rank grows with matched weight; squashed to [0, 1). A match of every query
    # word (the strict websearch query), a title match, and a question that reads
    # like the title (trigram similarity) are the strongest signs.
    squash = rank_all / (rank_all + 0.1)
    title = rank_title / (rank_title + 0.1)
    return min(1.0, 0.5 * squash + 0.25 * title + (0.15 if all_words else 0.0) + 0.1 * close)


_STOPWORDS_TEXT = (
    "a al algo como con de del el en es esta este hay la las lo los me mi mis no para por que se "
    "si su sus te tu un una uno y ya puedo quiero hago cual cuando donde "
    "the an and are can do does for from how i in is it me my of on or our to we what when "
    "where which who why will with you your not get"
)
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def _stem(word: str) -> str:
    return word[:5]


def _search_python(corrected: str, language: str, limit: int, published_only: bool):
    terms = {_stem(w) for w in WORD.findall(corrected) if w not in STOPWORDS and len(w) > 2}
    if not terms:
        return []
    articles = Article.objects.filter(language=language)
    if published_only:
        articles = articles.filter(status=ArticleStatus.PUBLISHED)
    scored = []
    for pk, title, keywords, body in articles.values_list("pk", "title", "keywords", "body").iterator():
        title_terms = {_stem(w) for w in words(title)}
        key_terms = {_stem(w) for w in words(keywords)}
        body_terms = {_stem(w) for w in words(body)}
        matched = terms & (title_terms | key_terms | body_terms)
        if not matched:
            continue
        weight = sum(1.0 if t in title_terms else 0.6 if t in key_terms else 0.3 for t in matched)
        rank = weight / len(terms)
        title = len(terms & title_terms) / len(terms)
        scored.append((pk, _score(rank * 0.2, title * 0.2, matched == terms, 0.0)))
    scored.sort(key=lambda row: (-row[1], row[0]))
    return scored[:limit]
