import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext

from channels_adapters.base import SendError
from channels_adapters.models import Channel, ChannelKind, InboundEvent, MailboxState
from channels_adapters.registry import ADAPTERS
from channels_adapters.services import inbound_event_reprocess
from channels_adapters.webchat.config import embed_snippet

MASK = "••••••"
_SECRET_WORDS = ("secret", "token", "password", "key", "auth")


def is_secret_key(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def mask_credentials(credentials: dict) -> dict:
    """Secrets show their last 4 characters only; ids and hosts show in full."""
    shown = {}
    for name, value in credentials.items():
        if is_secret_key(name) and value:
            text = str(value)
            shown[name] = MASK + (text[-4:] if len(text) > 12 else "")
        else:
            shown[name] = value
    return shown


def unmask_credentials(submitted: dict, stored: dict) -> dict:
    """A value left masked keeps what is stored; anything typed replaces it."""
    return {
        name: stored.get(name, "") if isinstance(value, str) and value.startswith(MASK) else value
        for name, value in submitted.items()
    }


class ChannelForm(forms.ModelForm):
    credentials_json = forms.CharField(
        label="Credentials",
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 80, "style": "font-family: monospace"}),
        help_text="JSON. Secrets are shown masked; leave a masked value as it is to keep it.",
    )

    class Meta:
        model = Channel
        fields = ["kind", "name", "is_active", "monthly_cost", "settings"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.credentials if self.instance.pk else {}
        if not stored and not self.instance.pk:
            kind = self.initial.get("kind") or "api"
            adapter = ADAPTERS.get(kind)
            stored = {k: "" for k in adapter.credential_keys} if adapter else {}
        self.initial["credentials_json"] = json.dumps(mask_credentials(stored), indent=2, ensure_ascii=False)

    def clean_credentials_json(self):
        raw = self.cleaned_data["credentials_json"] or "{}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise forms.ValidationError("Credentials must be a JSON object.")
        return unmask_credentials(data, self.instance.credentials if self.instance.pk else {})

    def clean(self):
        cleaned = super().clean()
        adapter = ADAPTERS.get(cleaned.get("kind"))
        credentials = cleaned.get("credentials_json")
        if adapter and isinstance(cleaned.get("settings"), dict):
            errors = adapter.settings_errors(cleaned["settings"])
            if errors:
                self.add_error("settings", [f"{key}: {sentence}" for key, sentence in errors.items()])
        if adapter and credentials is not None:
            credentials = cleaned["credentials_json"] = adapter.credentials_complete(credentials)
            missing = [k for k in adapter.credential_keys if not credentials.get(k)]
            if missing and cleaned.get("is_active"):
                self.add_error("credentials_json", f"An active channel needs: {', '.join(missing)}.")
        return cleaned

    def save(self, commit=True):
        self.instance.credentials = self.cleaned_data["credentials_json"]
        return super().save(commit)


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "is_active", "webhook", "monthly_cost"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "key"]
    readonly_fields = ["key", "webhook", "created_at"]
    actions = ["register_webhook"]
    fieldsets = [
        (None, {"fields": ["kind", "name", "is_active", "monthly_cost"]}),
        ("Provider", {"fields": ["webhook", "key", "credentials_json", "settings"]}),
        ("Record", {"fields": ["created_at"]}),
    ]

    @admin.action(description="Register the webhook URL with the provider")
    def register_webhook(self, request, queryset):
        for channel in queryset:
            adapter = ADAPTERS.get(channel.kind)
            try:
                if adapter is None:
                    raise NotImplementedError(f"No adapter for {channel.kind} channels.")
                note = adapter.register_webhook(channel)
                self.message_user(request, f"{channel.name}: {note}", messages.SUCCESS)
            except NotImplementedError as exc:
                self.message_user(request, f"{channel.name}: {exc}", messages.WARNING)
            except SendError as exc:
                self.message_user(request, f"{channel.name}: {exc.reason}", messages.ERROR)

    @admin.display(description="Webhook URL")
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

    @admin.display(description="Error")
    def short_error(self, obj):
        return (obj.error or "")[:120]

    @admin.display(description="Body")
    def body_text(self, obj):
        return format_html(
            "<pre style='white-space: pre-wrap'>{}</pre>",
            obj.body_bytes.decode("utf-8", errors="replace")[:20000],
        )

    @admin.action(description="Reprocess the selected events")
    def reprocess(self, request, queryset):
        count = inbound_event_reprocess(events=queryset)
        self.message_user(request, f"{count} event(s) queued for processing.", messages.SUCCESS)


@admin.register(MailboxState)
class MailboxStateAdmin(admin.ModelAdmin):
    """Where each polled IMAP folder stands, and its last error, for an admin chasing missing mail."""

    list_display = ("channel", "folder", "uidvalidity", "last_uid", "polled_at", "last_error")
    list_filter = ("channel",)
    list_select_related = ("channel",)
    readonly_fields = ("channel", "folder", "uidvalidity", "last_uid", "polled_at", "last_error")

    def has_add_permission(self, request):
        return False
