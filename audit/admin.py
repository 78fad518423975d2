"""The audit log in the admin: admins read, filter and export it; nobody edits it."""

import csv

from django.contrib import admin
from django.http import StreamingHttpResponse
from django.utils.translation import gettext_lazy as _

from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from helpdesk.roles import user_is_admin

CSV_COLUMNS = ["id", "at", "actor_id", "actor_label", "action", "target_type", "target_id", "ip", "details"]


class _Echo:
    def write(self, value):
        return value


def audit_csv_rows(queryset):
    import json

    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in queryset.order_by("at", "id").iterator(chunk_size=2000):
        yield writer.writerow(
            [
                entry.pk,
                entry.at.isoformat(),
                entry.actor_id or "",
                entry.actor_label,
                entry.action,
                entry.target_type,
                entry.target_id,
                entry.ip or "",
                json.dumps(entry.details, sort_keys=True),
            ]
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_label", "action", "target_type", "target_id", "ip"]
    list_filter = ["action", "target_type", ("at", admin.DateFieldListFilter)]
    search_fields = ["actor_label", "target_id", "ip"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    actions = ["export_csv"]
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return user_is_admin(request.user)

    def has_module_permission(self, request):
        return user_is_admin(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Export selected entries as CSV"))
    def export_csv(self, request, queryset):
        audit_record(
            action=AuditAction.AUDIT_EXPORTED,
            request=request,
            target_type="auditentry",
            details={"count": queryset.count(), "filters": dict(request.GET.items())},
        )
        response = StreamingHttpResponse(audit_csv_rows(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
        return response
