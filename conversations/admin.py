from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from conversations.models import CannedResponse, Case, DeliveryAttempt, Label, Message, Team, Thread


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name"]
    filter_horizontal = ["members"]


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "color"]


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "last_message_at"]
    search_fields = ["customer__name", "customer__identities__address"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "customer",
        "status",
        "priority",
        "assignee",
        "team",
        "origin_channel",
        "opened_at",
        "first_response_at",
        "resolved_at",
        "reopen_count",
    ]
    list_filter = ["status", "priority", "team", "origin_channel", "assignee", "labels"]
    search_fields = ["subject", "thread__customer__name"]
    date_hierarchy = "opened_at"
    raw_id_fields = ["thread"]
    filter_horizontal = ["labels"]
    list_select_related = ["thread__customer", "assignee", "team", "origin_channel"]

    @admin.display(description=_("Customer"))
    def customer(self, obj):
        return obj.thread.customer


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "started_at", "finished_at", "outcome", "error", "duration_ms"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "direction", "kind", "author", "channel", "status", "short"]
    list_filter = ["direction", "kind", "author", "status", "channel"]
    search_fields = ["body", "external_id"]
    date_hierarchy = "created_at"
    raw_id_fields = ["thread", "case", "identity", "author_user"]
    list_select_related = ["channel"]
    inlines = [DeliveryAttemptInline]

    @admin.display(description=_("Body"))
    def short(self, obj):
        return obj.body[:80]


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    """Saved answers for the inbox's reply box (placeholders like {{customer.first_name}})."""

    list_display = ["shortcut", "title", "team"]
    list_filter = ["team"]
    search_fields = ["shortcut", "title", "body"]
    list_select_related = ["team"]
