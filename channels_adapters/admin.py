from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from channels_adapters.admin_forms import CREDENTIAL_FIELDS, ChannelForm
from channels_adapters.base import SendError
from channels_adapters.connection import channel_connection_check
from channels_adapters.models import Channel, ChannelKind, InboundEvent, MailboxState
from channels_adapters.registry import ADAPTERS
from channels_adapters.services import inbound_event_reprocess
from channels_adapters.webchat.config import embed_snippet


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    change_form_template = "admin/channels_adapters/channel/change_form.html"
    list_display = ["name", "kind", "is_active", "webhook", "monthly_cost"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "key"]
    readonly_fields = ["key", "webhook", "created_at"]
    actions = ["test_connection", "register_webhook"]
    fieldsets = [
        (None, {"fields": ["kind", "name", "is_active", "monthly_cost"]}),
        (
            _("Credentials"),
            {
                "fields": CREDENTIAL_FIELDS,
                "description": _("Only the fields of the selected kind are used. Secrets are never shown."),
            },
        ),
        (_("Provider"), {"fields": ["webhook", "key", "settings"]}),
        (_("Record"), {"fields": ["created_at"]}),
    ]

    class Media:
        js = ["channels_adapters/channel_admin.js"]

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="channels_adapters_channel_test_connection",
            )
        ]
        return own + super().get_urls()

    def _report_connection(self, request, channel):
        result = channel_connection_check(channel=channel)
        level = messages.SUCCESS if result.ok else messages.ERROR
        self.message_user(request, f"{channel.name}: {result.message}", level)

    @admin.action(description=_("Test the connection with the provider"))
    def test_connection(self, request, queryset):
        for channel in queryset:
            self._report_connection(request, channel)

    def test_connection_view(self, request, object_id):
        return require_POST(self._test_connection_view)(request, object_id)

    def _test_connection_view(self, request, object_id):
        channel = get_object_or_404(Channel, pk=object_id)
        if not self.has_change_permission(request, channel):
            return redirect("admin:index")
        self._report_connection(request, channel)
        return redirect(reverse("admin:channels_adapters_channel_change", args=[channel.pk]))

    @admin.action(description=_("Register the webhook URL with the provider"))
    def register_webhook(self, request, queryset):
        for channel in queryset:
            adapter = ADAPTERS.get(channel.kind)
            try:
                if adapter is None:
                    raise NotImplementedError(
                        gettext("No adapter for %(kind)s channels.") % {"kind": channel.kind}
                    )
                note = adapter.register_webhook(channel)
                self.message_user(request, f"{channel.name}: {note}", messages.SUCCESS)
            except NotImplementedError as exc:
                self.message_user(request, f"{channel.name}: {exc}", messages.WARNING)
            except SendError as exc:
                self.message_user(request, f"{channel.name}: {exc.reason}", messages.ERROR)

    @admin.display(description=_("Webhook URL"))
    def webhook(self, obj):
        if not obj.pk:
            return gettext("Shown once the channel is saved.")
        if obj.kind == ChannelKind.WEBCHAT:
            # A website chat has no provider calling us: the site embeds this line instead.
            return format_html(
                "{}<br><code>{}</code>",
                gettext("Paste this line into the website's pages, before </body>:"),
                embed_snippet(obj),
            )
        return format_html("<code>{}</code>", obj.webhook_url)


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    list_display = ["id", "channel", "received_at", "status", "attempts", "short_error"]
    list_filter = ["status", "channel__kind", "channel"]
    date_hierarchy = "received_at"
    readonly_fields = [
        "channel",
        "received_at",
        "status",
        "processed_at",
        "attempts",
        "retryable",
        "error",
        "summary",
        "content_type",
        "headers",
        "body_text",
    ]
    exclude = ["body", "query_string"]
    actions = ["reprocess"]
    list_select_related = ["channel"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("Error"))
    def short_error(self, obj):
        return (obj.error or "")[:120]

    @admin.display(description=_("Body"))
    def body_text(self, obj):
        return format_html(
            "<pre style='white-space: pre-wrap'>{}</pre>",
            obj.body_bytes.decode("utf-8", errors="replace")[:20000],
        )

    @admin.action(description=_("Reprocess the selected events"))
    def reprocess(self, request, queryset):
        count = inbound_event_reprocess(events=queryset)
        self.message_user(
            request,
            gettext("%(count)s event(s) queued for processing.") % {"count": count},
            messages.SUCCESS,
        )


@admin.register(MailboxState)
class MailboxStateAdmin(admin.ModelAdmin):
    """Where each polled IMAP folder stands, and its last error, for an admin chasing missing mail."""

    list_display = ("channel", "folder", "uidvalidity", "last_uid", "polled_at", "last_error")
    list_filter = ("channel",)
    list_select_related = ("channel",)
    readonly_fields = ("channel", "folder", "uidvalidity", "last_uid", "polled_at", "last_error")

    def has_add_permission(self, request):
        return False
