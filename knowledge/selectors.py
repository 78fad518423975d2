"""Reads of the knowledge base: help-center pages, agent suggestions, bot figures."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone

from knowledge.models import Article, ArticleStatus, BotSession, Category, UnansweredQuestion


def published_articles(*, language: str | None = None):
    articles = Article.objects.filter(status=ArticleStatus.PUBLISHED)
    return articles.filter(language=language) if language else articles


def categories_for_help(*, language: str) -> list[Category]:
    """The help center's home: each category with its published articles' count and a few titles."""
    categories = list(
        Category.objects.filter(language=language)
        .annotate(published=Count("articles", filter=Q(articles__status=ArticleStatus.PUBLISHED)))
        .filter(published__gt=0)
    )
    top = {}
    for article in (
        published_articles(language=language)
        .filter(category__in=categories)
        .only("title", "slug", "language", "category_id")
        .order_by("-view_count", "title")
    ):
        top.setdefault(article.category_id, [])
        if len(top[article.category_id]) < 5:
            top[article.category_id].append(article)
    for category in categories:
        category.top_articles = top.get(category.pk, [])
    return categories


def category_for_help(*, language: str, slug: str):
    category = Category.objects.filter(language=language, slug=slug).first()
    if category is None:
        return None, []
    articles = list(published_articles(language=language).filter(category=category).order_by("title"))
    return category, articles


def article_for_help(*, language: str, slug: str) -> Article | None:
    return published_articles(language=language).select_related("category").filter(slug=slug).first()


def article_translations(*, article: Article) -> list[Article]:
    """The same article in the other languages (linked either way through translation_of)."""
    root = article.translation_of_id or article.pk
    return list(
        published_articles()
        .filter(Q(pk=root) | Q(translation_of_id=root))
        .exclude(pk=article.pk)
        .only("title", "slug", "language")
    )


def article_related(*, article: Article, limit: int = 4) -> list[Article]:
    """Same category first, then what search finds for the title."""
    related = list(
        published_articles(language=article.language)
        .filter(category_id=article.category_id)
        .exclude(pk=article.pk)
        .only("title", "slug", "language")
        .order_by("-view_count", "title")[:limit]
    )
    if len(related) < limit:
        from knowledge.search import articles_search

        seen = {a.pk for a in related} | {article.pk}
        for hit in articles_search(query=article.title, language=article.language, limit=limit + 2):
            if hit.article.pk not in seen and len(related) < limit:
                related.append(hit.article)
                seen.add(hit.article.pk)
    return related


def help_contact(*, language: str) -> dict:
    """Where "still need help?" goes: the web chat with the help center on, else the contact URL."""
    from channels_adapters.models import Channel, ChannelKind

    for channel in Channel.objects.filter(kind=ChannelKind.WEBCHAT, is_active=True).defer("credentials"):
        if (channel.settings or {}).get("help_center", True):
            return {"widget_src": f"{settings.PUBLIC_BASE_URL}/widget/{channel.key}.js", "url": ""}
    return {"widget_src": "", "url": settings.KNOWLEDGE["CONTACT_URL"]}


def sitemap_articles():
    return published_articles().only("slug", "language", "updated_at").order_by("language", "slug")


def bot_figures(*, start: date, end: date) -> dict:
    """The bot's share of the work over [start, end): deflection (resolved by the bot) and
    handoff rates among the cases the bot took part in, and the questions the KB could not answer."""
    tz = timezone.get_current_timezone()
    start_at = timezone.make_aware(datetime.combine(start, time.min), tz)
    end_at = timezone.make_aware(datetime.combine(end, time.min), tz)
    counts = BotSession.objects.filter(created_at__gte=start_at, created_at__lt=end_at).aggregate(
        total=Count("pk"),
        resolved=Count("pk", filter=Q(state=BotSession.State.RESOLVED)),
        handed_off=Count("pk", filter=Q(state=BotSession.State.HANDED_OFF)),
    )
    total = counts["total"]
    unanswered = list(
        UnansweredQuestion.objects.filter(created_at__gte=start_at, created_at__lt=end_at)
        .values("normalized", "language")
        .annotate(times=Count("pk"), example=Max("text"), last=Max("created_at"))
        .order_by("-times", "-last")[:10]
    )
    return {
        "conversations": total,
        "deflection_rate": counts["resolved"] / total if total else None,
        "handoff_rate": counts["handed_off"] / total if total else None,
        "unanswered": unanswered,
    }


def default_period() -> tuple[date, date]:
    today = timezone.localdate()
    return today - timedelta(days=29), today + timedelta(days=1)
