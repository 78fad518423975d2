from django.contrib import admin

from commitments.models import Commitment


@admin.register(Commitment)
class CommitmentAdmin(admin.ModelAdmin):
    list_display = ("text", "customer", "case", "status", "due_on", "created_by", "created_at", "closed_at")
    list_filter = ("status", "due_on", "created_at")
    search_fields = ("text", "customer__name")
    date_hierarchy = "created_at"
    list_select_related = ("customer", "case", "created_by")
    # Marking, fulfilling and withdrawing write the thread's event line: they are done
    # from the case (commitments/services.py), the admin corrects wording and dates.
    readonly_fields = (
        "message",
        "customer",
        "case",
        "status",
        "created_by",
        "created_at",
        "closed_by",
        "closed_at",
    )

    def has_add_permission(self, request):
        return False
