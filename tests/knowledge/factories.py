"""Knowledge-base factories; the core's are in tests/factories.py."""

import factory

from knowledge.models import Article, ArticleStatus, Category
from knowledge.services import article_save


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
    language = "en"


class ArticleFactory(factory.django.DjangoModelFactory):
    """Goes through article_save so the article is rendered and searchable."""

    class Meta:
        model = Article

    title = factory.Sequence(lambda n: f"Article number {n}")
    language = "en"
    body = "Some **helpful** text."
    status = ArticleStatus.PUBLISHED

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return article_save(article=model_class(**kwargs))
