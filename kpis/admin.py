from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from kpis import services
from kpis.models import (
    BusinessHours,
    CaseSla,
    KpiDaily,
    KpiRollupDay,
    SlaPolicy,
    SurveyAnswer,
    SurveyCampaign,
    SurveyRequest,
)


class BusinessHoursForm(forms.ModelForm):
    class Meta:
        model = BusinessHours
        fields = ["name", "team", "time_zone", "weekly", "holidays"]
        help_texts = {
            "weekly": 'e.g. {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], "tue": [...]}; '
            "a missing day is closed.",
            "holidays": 'e.g. ["2026-12-25", "2027-01-01"] (dates in the time zone above).',
        }

    def clean(self):
        data = super().clean()
        try:
            services.business_hours_validate(
                weekly=data.get("weekly") or {},
                holidays=data.get("holidays") or [],
                time_zone=data.get("time_zone") or "UTC",
            )
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        return data


@admin.register(BusinessHours)
class BusinessHoursAdmin(admin.ModelAdmin):
    form = BusinessHoursForm
    list_display = ["name", "team", "time_zone"]
    list_select_related = ["team"]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "channel",
        "priority",
        "first_response_minutes",
        "resolution_minutes",
        "business_hours_only",
        "is_active",
    ]
    list_filter = ["is_active", "channel"]
    list_select_related = ["channel"]


@admin.register(CaseSla)
class CaseSlaAdmin(admin.ModelAdmin):
    list_display = ["case", "policy", "first_response_due", "first_response_breached_at", "resolution_due"]
    list_select_related = ["case", "policy"]
    raw_id_fields = ["case"]
    readonly_fields = [
        f"{t}_{s}" for t in ("first_response", "resolution") for s in ("warned_at", "breached_at")
    ]


@admin.register(SurveyCampaign)
class SurveyCampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "channel", "sample_size", "every_days", "last_run_at", "is_active"]
    list_select_related = ["channel"]


@admin.register(SurveyRequest)
class SurveyRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "case", "customer", "channel", "status", "send_after", "sent_at", "error"]
    list_filter = ["kind", "status"]
    list_select_related = ["case", "customer", "channel"]
    raw_id_fields = ["case", "customer", "message", "agent"]


@admin.register(SurveyAnswer)
class SurveyAnswerAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "score", "case", "channel", "agent", "via", "answered_at"]
    list_filter = ["kind", "via", "channel"]
    list_select_related = ["case", "channel", "agent"]
    raw_id_fields = ["request", "case", "customer", "message", "agent"]


@admin.register(KpiDaily)
class KpiDailyAdmin(admin.ModelAdmin):
    list_display = ["day", "channel", "agent", "team", "cases_opened", "resolved", "responded"]
    list_filter = ["channel"]
    list_select_related = ["channel", "agent", "team"]
    date_hierarchy = "day"

    def has_add_permission(self, request):
        return False  # rollups are computed, never typed in

    # Nor corrected by hand: the day's totals (KpiDayTotal) are written with them. To
    # recompute a day, delete its "KPI rollup day" (it is then computed live) or run
    # rebuild_kpis.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(KpiRollupDay)
class KpiRollupDayAdmin(admin.ModelAdmin):
    list_display = ["day", "computed_at"]

    def has_add_permission(self, request):
        return False
