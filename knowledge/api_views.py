"""REST API of the knowledge base: /api/v1/kb/search/ and /api/v1/kb/articles/.

Same authentication, throttles and error shape as the rest of the API (api.views.base).
Search is for every agent; articles are written by supervisors and admins, while an
agent may propose a draft.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from api.schema import example
from api.views.base import ApiMixin, not_found
from helpdesk.roles import user_is_supervisor
from knowledge import services
from knowledge.models import Article, ArticleStatus, Category, Language
from knowledge.search import articles_search
from knowledge.text import detect_language


class IsSupervisorOrDrafting(BasePermission):
    """Supervisors and admins read and write articles; an agent may only POST a draft."""

    message = _("Articles are edited by supervisors and admins; agents may propose drafts.")

    def has_permission(self, request, view):
        if user_is_supervisor(request.user):
            return True
        return request.method == "POST"


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=300, help_text="The question, in the customer's words.")
    lang = serializers.ChoiceField(
        choices=Language.choices, required=False, help_text="es or en; absent: detected from q."
    )
    limit = serializers.IntegerField(min_value=1, max_value=20, default=5)

    def validate_q(self, value):
        # A query string is not parsed as JSON (api.parsers): PostgreSQL refuses NUL here too.
        if "\x00" in value:
            raise serializers.ValidationError(_("Text may not contain NUL characters."))
        return value


class SearchResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    url = serializers.URLField(help_text="The article's public help-center page.")
    language = serializers.CharField()
    score = serializers.FloatField(help_text="0 to 1; the bot answers from its threshold up.")


class SearchAnswerSerializer(serializers.Serializer):
    results = SearchResultSerializer(many=True)


class ArticleSerializer(serializers.ModelSerializer):
    category = serializers.PrimaryKeyRelatedField(
        queryset=Category.objects.all(), allow_null=True, required=False
    )
    translation_of = serializers.PrimaryKeyRelatedField(
        queryset=Article.objects.all(), allow_null=True, required=False
    )
    url = serializers.SerializerMethodField()
    slug = serializers.SlugField(max_length=200, required=False, allow_blank=True)

    class Meta:
        model = Article
        fields = [
            "id", "title", "slug", "language", "category", "translation_of", "summary", "body", "html",
            "keywords", "status", "author", "url", "view_count", "helpful_yes", "helpful_no",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "html", "author", "url", "view_count", "helpful_yes", "helpful_no", "created_at", "updated_at",
        ]  # fmt: skip

    def get_validators(self):
        # Slug uniqueness per language is the service's check (a clear error, and the
        # slug may be left out to come from the title).
        return []

    def get_url(self, article) -> str:
        return article.public_url


ARTICLE_EXAMPLE = {
    "id": 3,
    "title": "Reset your password",
    "slug": "reset-your-password",
    "language": "en",
    "category": 2,
    "translation_of": 4,
    "summary": "Click 'Forgot your password?' on the sign-in page.",
    "body": "If you cannot **sign in**, click *Forgot your password?*…",
    "html": "<p>If you cannot <strong>sign in</strong>, click <em>Forgot your password?</em>…</p>",
    "keywords": "password, login",
    "status": "published",
    "author": 1,
    "url": "https://help.example.com/help/en/reset-your-password/",
    "view_count": 120,
    "helpful_yes": 30,
    "helpful_no": 2,
    "created_at": "2026-11-01T08:00:00Z",
    "updated_at": "2026-11-20T08:00:00Z",
}


class KbSearchView(ApiMixin, GenericAPIView):
    serializer_class = SearchAnswerSerializer

    @extend_schema(
        tags=["knowledge base"],
        summary="Search the knowledge base",
        description="Published articles best first, with PostgreSQL full-text search in the language "
        "(Spanish or English stemming, accents ignored) and typo correction.",
        parameters=[SearchQuerySerializer],
        responses=SearchAnswerSerializer,
        examples=[
            example(
                "Results",
                {"results": [{"id": 3, "title": "Reset your password", "language": "en", "score": 0.84,
                              "url": "https://help.example.com/help/en/reset-your-password/"}]},
            )
        ],
    )  # fmt: skip
    def get(self, request):
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        lang = data.get("lang") or detect_language(data["q"], fallback="en")
        hits = articles_search(query=data["q"], language=lang, limit=data["limit"])
        results = [
            {
                "id": h.article.pk,
                "title": h.article.title,
                "url": h.article.public_url,
                "language": h.article.language,
                "score": h.score,
            }
            for h in hits
        ]
        return Response({"results": results})


class ArticleFilterSerializer(serializers.Serializer):
    lang = serializers.ChoiceField(choices=Language.choices, required=False)
    status = serializers.ChoiceField(choices=ArticleStatus.choices, required=False)


class ArticleListView(ApiMixin, GenericAPIView):
    permission_classes = [IsSupervisorOrDrafting]
    serializer_class = ArticleSerializer
    keyset_field = "id"

    @extend_schema(
        tags=["knowledge base"],
        summary="List articles (supervisors, admins)",
        parameters=[ArticleFilterSerializer],
        responses=ArticleSerializer(many=True),
        examples=[example("Articles", [ARTICLE_EXAMPLE])],
    )
    def get(self, request):
        query = ArticleFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        articles = Article.objects.all()
        if "lang" in query.validated_data:
            articles = articles.filter(language=query.validated_data["lang"])
        if "status" in query.validated_data:
            articles = articles.filter(status=query.validated_data["status"])
        rows = self.paginate_queryset(articles)
        return self.get_paginated_response(ArticleSerializer(rows, many=True).data)

    @extend_schema(
        tags=["knowledge base"],
        summary="Create an article",
        description="Supervisors and admins may publish; an agent's article is always saved as a draft.",
        request=ArticleSerializer,
        responses={201: ArticleSerializer},
        examples=[example("Created", ARTICLE_EXAMPLE, status=201)],
    )
    def post(self, request):
        data = ArticleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if not user_is_supervisor(request.user):
            fields["status"] = ArticleStatus.DRAFT
        article = services.article_create(author=request.user, **fields)
        return Response(ArticleSerializer(article).data, status=status.HTTP_201_CREATED)


class ArticleDetailView(ApiMixin, GenericAPIView):
    permission_classes = [IsSupervisorOrDrafting]
    serializer_class = ArticleSerializer

    def check_permissions(self, request):
        # POST is not an operation here: only supervisors and admins reach an article.
        if not user_is_supervisor(request.user) and request.user.is_authenticated:
            self.permission_denied(request, message=IsSupervisorOrDrafting.message)
        super().check_permissions(request)

    def _article(self, pk) -> Article:
        article = Article.objects.filter(pk=pk).first()
        if article is None:
            not_found(_("No such article."))
        return article

    @extend_schema(
        tags=["knowledge base"],
        summary="Read an article (supervisors, admins)",
        responses=ArticleSerializer,
        examples=[example("An article", ARTICLE_EXAMPLE)],
    )
    def get(self, request, pk):
        return Response(ArticleSerializer(self._article(pk)).data)

    @extend_schema(
        tags=["knowledge base"],
        summary="Change an article (supervisors, admins)",
        request=ArticleSerializer(partial=True),
        responses=ArticleSerializer,
        examples=[example("Published", ARTICLE_EXAMPLE)],
    )
    def patch(self, request, pk):
        article = self._article(pk)
        data = ArticleSerializer(article, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        article = services.article_update(article=article, **data.validated_data)
        return Response(ArticleSerializer(article).data)
