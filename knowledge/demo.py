"""Demo data: the help center's articles in Spanish and English, and the bot on the web chat."""

from __future__ import annotations

from knowledge.demo_content import ARTICLES, CATEGORIES
from knowledge.models import Article, ArticleStatus
from knowledge.services import article_create, category_get_or_create


def demo_articles_seed(*, author=None, channels=()) -> list[Article]:
    """Every demo article, published and linked to its translation; the bot on the given channels."""
    categories = {}
    for position, (key, names) in enumerate(CATEGORIES.items()):
        for lang, (name, slug) in names.items():
            categories[key, lang] = category_get_or_create(
                language=lang, name=name, slug=slug, position=position
            )
    made = []
    for _topic, category, versions in ARTICLES:
        original = None
        for lang in ("es", "en"):
            slug, title, keywords, summary, body = versions[lang]
            article = Article.objects.filter(language=lang, slug=slug).first() or article_create(
                author=author,
                title=title,
                slug=slug,
                language=lang,
                category=categories[category, lang],
                keywords=keywords,
                summary=summary,
                body=body,
                status=ArticleStatus.PUBLISHED,
                translation_of=original,
            )
            original = original or article
            made.append(article)
    for channel in channels:
        settings = dict(channel.settings or {})
        settings["bot"] = {
            "mode": "always",
            "name": "Ayudante" if settings.get("language") == "es" else "Helper",
        }
        channel.settings = settings
        channel.save(update_fields=["settings"])
    return made
