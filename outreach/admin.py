from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from outreach import campaigns
from outreach.models import Campaign, CampaignMessage, CampaignStep, Consent, Outreach, OutreachStep


class CampaignMessageInline(admin.StackedInline):
    model = CampaignMessage
    extra = 1


class CampaignStepInline(admin.TabularInline):
    model = CampaignStep
    extra = 1


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "goal", "scheduled_at", "planned_at", "created_at")
    list_filter = ("status",)
    readonly_fields = ("planned_at", "finished_at")
    inlines = [CampaignMessageInline, CampaignStepInline]
    actions = ["launch", "pause", "resume"]

    def _each(self, request, queryset, act, done):
        for campaign in queryset:
            try:
                act(campaign=campaign)
            except ValidationError as exc:
                self.message_user(request, f"{campaign}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: {done}")

    @admin.action(description=_("Launch now (or at its scheduled time)"))
    def launch(self, request, queryset):
        for campaign in queryset:
            try:
                campaigns.campaign_launch(campaign=campaign, at=campaign.scheduled_at)
            except ValidationError as exc:
                self.message_user(request, f"{campaign}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                done = _("launched")
                self.message_user(request, f"{campaign}: {done}")

    @admin.action(description=_("Pause"))
    def pause(self, request, queryset):
        self._each(request, queryset, campaigns.campaign_pause, _("paused"))

    @admin.action(description=_("Resume"))
    def resume(self, request, queryset):
        self._each(request, queryset, campaigns.campaign_resume, _("resumed"))


class OutreachStepInline(admin.TabularInline):
    model = OutreachStep
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in OutreachStep._meta.fields]
    raw_id_fields = ("message",)


@admin.register(Outreach)
class OutreachAdmin(admin.ModelAdmin):
    list_display = ("pk", "customer", "source", "status", "goal", "campaign", "created_at")
    list_filter = ("status", "source")
    raw_id_fields = ("customer", "case", "campaign", "created_by")
    list_select_related = ("customer", "campaign")
    inlines = [OutreachStepInline]


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ("customer", "channel_kind", "status", "source", "updated_at")
    list_filter = ("channel_kind", "status", "source")
    raw_id_fields = ("customer",)
    list_select_related = ("customer",)
