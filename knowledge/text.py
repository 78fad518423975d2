"""Plain-text helpers shared by search, the bot and rendering (no database)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import markdown
import nh3

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "a", "ul", "ol", "li", "h2", "h3", "h4", "blockquote",
    "code", "pre", "hr", "table", "thead", "tbody", "tr", "th", "td", "img",
}  # fmt: skip
WORD = re.compile(r"[a-z0-9ñ]+")


def render_markdown(body: str) -> str:
    """An article's Markdown as HTML safe to show anyone (nothing executable survives)."""
    raw = markdown.markdown(body or "", extensions=["tables", "sane_lists"])
    return nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener nofollow",
    )


def plain_text(body: str) -> str:
    html = render_markdown(body)
    return re.sub(r"\s+", " ", nh3.clean(html, tags=set())).strip()


def unaccent(text: str) -> str:
    # ñ stays: it is its own letter in Spanish ("año" is not "ano").
    text = (text or "").lower().replace("ñ", "\0")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.replace("\0", "ñ")


def normalize(text: str) -> str:
    """Lower-cased, unaccented, one space between words: equal questions compare equal."""
    return " ".join(WORD.findall(unaccent(text)))[:500]


def words(text: str) -> list[str]:
    return WORD.findall(unaccent(text))


def summary_of(article) -> str:
    if article.summary:
        return article.summary
    text = plain_text(article.body)
    if len(text) <= 240:
        return text
    cut = text[:240].rsplit(" ", 1)[0]
    return cut + "…"


@lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    # Only the languages the KB is written in: small, fast, and never a third answer.
    return (
        LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SPANISH)
        .with_preloaded_language_models()
        .build()
    )


def detect_language(text: str, *, fallback: str) -> str:
    """'es' or 'en' when the text says so clearly; else the fallback (channel's or customer's)."""
    if len(words(text)) < 2:
        return fallback
    from lingua import Language

    values = _detector().compute_language_confidence_values(text)
    if not values or values[0].value < 0.7:
        return fallback
    return "es" if values[0].language == Language.SPANISH else "en"
