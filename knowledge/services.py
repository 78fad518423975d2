"""Writes on the knowledge base: articles, their votes and views."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.text import slugify
from django.utils.translation import gettext as _

from knowledge.models import Article, ArticleStatus, Category, Language
from knowledge.search import articles_index
from knowledge.text import render_markdown

EDITABLE = (
    "title",
    "slug",
    "language",
    "category",
    "summary",
    "body",
    "keywords",
    "status",
    "translation_of",
)


def _validate(article: Article) -> None:
    errors = {}
    if not (article.title or "").strip():
        errors["title"] = [_("An article needs a title.")]
    if not (article.body or "").strip():
        errors["body"] = [_("An article needs a body.")]
    if article.language not in Language.values:
        errors["language"] = [_("Choose Spanish (es) or English (en).")]
    if article.status not in ArticleStatus.values:
        errors["status"] = [_("Choose draft or published.")]
    article.slug = slugify(article.slug or article.title)[:200]
    if not article.slug:
        errors["slug"] = [_("The title gives no usable address: write a slug.")]
    elif Article.objects.filter(language=article.language, slug=article.slug).exclude(pk=article.pk).exists():
        errors["slug"] = [_("Another article in this language already has this slug.")]
    if article.category_id and article.category.language != article.language:
        errors["category"] = [_("The category is in another language than the article.")]
    if article.translation_of_id:
        if article.translation_of_id == article.pk:
            errors["translation_of"] = [_("An article cannot be its own translation.")]
        elif article.translation_of.language == article.language:
            errors["translation_of"] = [_("A translation is in another language than its original.")]
    if errors:
        raise ValidationError(errors)


def article_save(*, article: Article) -> Article:
    """Create or update an article: validated, rendered, and searchable as soon as it commits."""
    _validate(article)
    article.html = render_markdown(article.body)
    with transaction.atomic():
        article.save()
        articles_index(article_ids=[article.pk])
    return article


def article_create(*, author=None, **fields) -> Article:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError(_("Unknown fields: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    return article_save(article=Article(author=author, **fields))


def article_update(*, article: Article, **fields) -> Article:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError(_("Unknown fields: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    for name, value in fields.items():
        setattr(article, name, value)
    return article_save(article=article)


def article_view_record(*, article: Article) -> None:
    # One UPDATE, no read: concurrent readers never lose a count.
    Article.objects.filter(pk=article.pk).update(view_count=F("view_count") + 1)


def article_vote(*, article: Article, helpful: bool) -> None:
    field = "helpful_yes" if helpful else "helpful_no"
    Article.objects.filter(pk=article.pk).update(**{field: F(field) + 1})


def category_get_or_create(*, language: str, name: str, slug: str, position: int = 0) -> Category:
    category, _created = Category.objects.get_or_create(
        language=language, slug=slug, defaults={"name": name, "position": position}
    )
    return category
