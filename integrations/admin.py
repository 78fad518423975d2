import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from integrations import services
from integrations.models import DeliveryStatus, Event, WebhookAttempt, WebhookDelivery, WebhookSubscription

MASK = "••••••"


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=2000, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=_("Events"), choices=Event.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookSubscription
        fields = ["url", "description", "events", "is_active"]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ["__str__", "url", "is_active", "paused", "consecutive_failures", "created_at"]
    list_filter = ["is_active", ("paused_at", admin.EmptyFieldListFilter)]
    search_fields = ["url", "description"]
    readonly_fields = ["secret_masked", "paused_at", "paused_reason", "consecutive_failures", "created_at"]
    actions = ["resume", "rotate_secret"]

    @admin.display(description=_("Signing secret"))
    def secret_masked(self, obj):
        if not obj.pk:
            return gettext("Generated when you save; shown to you once.")
        return MASK + obj.secret[-4:]

    @admin.display(description=_("Paused"), boolean=True)
    def paused(self, obj):
        return obj.paused_at is not None

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.subscription_create(
            url=obj.url, events=obj.events, description=obj.description, is_active=obj.is_active
        )
        obj.pk = created.pk
        obj.secret_store = created.secret_store
        messages.warning(
            request,
            format_html(
                "{} <code>{}</code>",
                gettext("Signing secret (copy it now: it is not shown again):"),
                created.secret,
            ),
        )

    @admin.action(description=_("Resume the selected subscriptions (send what they hold, in order)"))
    def resume(self, request, queryset):
        for subscription in queryset:
            services.subscription_resume(subscription=subscription)
        self.message_user(
            request,
            ngettext("%(count)s subscription resumed.", "%(count)s subscriptions resumed.", len(queryset))
            % {"count": len(queryset)},
        )

    @admin.action(description=_("Rotate the signing secret (shown once)"))
    def rotate_secret(self, request, queryset):
        for subscription in queryset:
            secret = services.subscription_secret_rotate(subscription=subscription)
            self.message_user(
                request,
                format_html(
                    "{} <code>{}</code>",
                    gettext("New signing secret of %(name)s (copy it now: it is not shown again):")
                    % {"name": subscription},
                    secret,
                ),
                messages.WARNING,
            )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "at", "succeeded", "status_code", "duration_ms", "error", "response_excerpt"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event",
        "subscription",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "ordering_key",
    ]
    list_filter = ["status", "event", "subscription"]
    search_fields = ["event_id", "ordering_key"]
    date_hierarchy = "created_at"
    list_select_related = ["subscription"]
    readonly_fields = [
        "subscription",
        "event_id",
        "event",
        "payload_pretty",
        "ordering_key",
        "status",
        "created_at",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "delivered_at",
        "last_error",
        "replay_of",
    ]
    exclude = ["payload"]
    inlines = [WebhookAttemptInline]
    actions = ["replay", "discard"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("Payload"))
    def payload_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @admin.action(description=_("Re-send the selected deliveries"))
    def replay(self, request, queryset):
        copies = services.deliveries_replay(deliveries=list(queryset))
        self.message_user(
            request,
            ngettext("%(count)s delivery queued again.", "%(count)s deliveries queued again.", len(copies))
            % {"count": len(copies)},
        )

    @admin.action(description=_("Discard the selected pending deliveries (the ones behind them go on)"))
    def discard(self, request, queryset):
        count = services.deliveries_discard(deliveries=list(queryset.filter(status=DeliveryStatus.PENDING)))
        self.message_user(
            request,
            ngettext("%(count)s delivery discarded.", "%(count)s deliveries discarded.", count)
            % {"count": count},
        )
