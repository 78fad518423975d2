from django.contrib import admin
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from automation.models import AgentPresence, Macro, OutOfHoursReply, Rule, TeamRouting
from automation.rules.engine import rule_preview
from automation.rules.vocabulary import HELP_ACTIONS, HELP_CONDITIONS


@admin.register(TeamRouting)
class TeamRoutingAdmin(admin.ModelAdmin):
    list_display = ("team", "auto_assign", "mode", "capacity", "reassign_after_minutes")
    exclude = ("last_agent",)


@admin.register(AgentPresence)
class AgentPresenceAdmin(admin.ModelAdmin):
    list_display = ("user", "connections", "away", "last_seen_at", "unavailable_since")
    readonly_fields = ("connections", "last_seen_at", "unavailable_since")


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ("name", "position", "event", "is_active", "stop_processing", "preview_link")
    list_editable = ("position", "is_active")
    list_filter = ("event", "is_active")
    ordering = ("position", "pk")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields["conditions"].help_text = HELP_CONDITIONS
        form.base_fields["actions"].help_text = HELP_ACTIONS
        return form

    @admin.display(description=_("Preview"))
    def preview_link(self, rule):
        url = reverse("admin:automation_rule_preview", args=[rule.pk])
        return format_html('<a href="{}">{}</a>', url, _("Try on the last cases"))

    def get_urls(self):
        return [
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="automation_rule_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, pk):
        """What the rule would do on the latest cases; nothing is changed or sent."""
        rule = get_object_or_404(Rule, pk=pk)
        rows = rule_preview(rule=rule)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "rule": rule,
            "rows": rows,
            "matched": sum(1 for r in rows if r["matched"]),
            "title": _("Preview of rule '%(name)s'") % {"name": rule.name},
        }
        return TemplateResponse(request, "automation/admin/rule_preview.html", context)


@admin.register(Macro)
class MacroAdmin(admin.ModelAdmin):
    list_display = ("name", "owner")
    list_filter = ("owner",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields["actions"].help_text = HELP_ACTIONS
        return form


@admin.register(OutOfHoursReply)
class OutOfHoursReplyAdmin(admin.ModelAdmin):
    list_display = ("channel", "is_active", "business_hours")
