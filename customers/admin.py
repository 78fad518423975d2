from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from customers.models import Customer, CustomerMerge, Identity


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    fields = ["kind", "address", "display_name", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "identity_list", "created_at"]
    search_fields = ["name", "identities__address"]
    inlines = [IdentityInline]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("identities")

    @admin.display(description=_("Identities"))
    def identity_list(self, obj):
        return ", ".join(str(i) for i in obj.identities.all())


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["kind", "address", "customer", "created_at"]
    list_filter = ["kind"]
    search_fields = ["address", "customer__name"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]


@admin.register(CustomerMerge)
class CustomerMergeAdmin(admin.ModelAdmin):
    list_display = ["survivor", "merged_customer_id", "merged_by", "merged_at"]
    readonly_fields = [f.name for f in CustomerMerge._meta.fields]
    list_select_related = ["survivor", "merged_by"]

    def has_add_permission(self, request):
        return False
