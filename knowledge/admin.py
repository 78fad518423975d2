"""Django admin for the knowledge base: supervisors and admins edit, with a live preview."""

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpResponseForbidden, JsonResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from helpdesk.roles import user_is_supervisor
from knowledge import services
from knowledge.models import Article, BotSession, BotTurn, Category, UnansweredQuestion
from knowledge.text import render_markdown


class SupervisorsEdit:
    """Supervisors and admins (with admin access) edit the knowledge base."""

    def has_module_permission(self, request):
        return user_is_supervisor(request.user)

    def has_view_permission(self, request, obj=None):
        return user_is_supervisor(request.user)

    def has_add_permission(self, request):
        return user_is_supervisor(request.user)

    def has_change_permission(self, request, obj=None):
        return user_is_supervisor(request.user)

    def has_delete_permission(self, request, obj=None):
        return user_is_supervisor(request.user)


@admin.register(Category)
class CategoryAdmin(SupervisorsEdit, admin.ModelAdmin):
    list_display = ("name", "language", "slug", "position")
    list_filter = ("language",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Article)
class ArticleAdmin(SupervisorsEdit, admin.ModelAdmin):
    list_display = (
        "title",
        "language",
        "category",
        "status",
        "updated_at",
        "view_count",
        "helpful_yes",
        "helpful_no",
    )
    list_filter = ("status", "language", "category")
    list_select_related = ("category",)
    search_fields = ("title", "keywords")
    prepopulated_fields = {"slug": ("title",)}
    autocomplete_fields = ("translation_of",)
    readonly_fields = ("preview", "author", "view_count", "helpful_yes", "helpful_no", "updated_at")
    fields = (
        "title", "slug", "language", "category", "translation_of", "status", "keywords", "summary", "body",
        "preview", "author", "updated_at", "view_count", "helpful_yes", "helpful_no",
    )  # fmt: skip

    class Media:
        js = ("knowledge/admin_preview.js",)

    @admin.display(description=_("Preview"))
    def preview(self, obj):
        # Filled live by admin_preview.js as the body is typed; the saved rendering without JS.
        html = obj.html if obj and obj.pk else ""
        return format_html(
            '<div id="kb-preview" class="kb-preview" data-url="{}">{}</div>', "preview/", mark_safe(html)
        )

    def get_urls(self):
        return [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="knowledge_article_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        if request.method != "POST" or not user_is_supervisor(request.user):
            return HttpResponseForbidden()
        return JsonResponse({"html": render_markdown(request.POST.get("body", "")[:200_000])})

    def save_model(self, request, obj, form, change):
        if not change and obj.author_id is None:
            obj.author = request.user
        try:
            services.article_save(article=obj)
        except ValidationError as exc:
            # The form checked the fields; a rule of the service (a slug taken) is shown, nothing saved.
            self.message_user(request, "; ".join(exc.messages), level="error")
            raise


@admin.register(BotSession)
class BotSessionAdmin(SupervisorsEdit, admin.ModelAdmin):
    list_display = ("case", "state", "handoff_reason", "article", "score", "answers", "created_at")
    list_filter = ("state", "handoff_reason")
    list_select_related = ("article",)
    readonly_fields = [f.name for f in BotSession._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(BotTurn)
class BotTurnAdmin(SupervisorsEdit, admin.ModelAdmin):
    """What the bot did with each customer message: read only, the worker writes it."""

    list_display = ("message_id", "outcome", "queued_at", "done_at")
    list_filter = ("outcome",)
    readonly_fields = ("message", "outcome", "queued_at", "done_at")
    # The message's id is enough here; its select widget would list every message.
    raw_id_fields = ("message",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UnansweredQuestion)
class UnansweredQuestionAdmin(SupervisorsEdit, admin.ModelAdmin):
    list_display = ("text", "language", "best_score", "created_at")
    list_filter = ("language",)
    search_fields = ("text",)
    readonly_fields = ("case", "language", "text", "normalized", "best_score", "created_at")

    def has_add_permission(self, request):
        return False
