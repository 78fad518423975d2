"""Customer imports in the admin: upload, map the columns, dry run, import, watch progress."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from helpdesk.roles import user_is_admin
from privacy.import_jobs import customer_import_create, customer_import_start
from privacy.importing import ATTRIBUTE, EMAIL, EXTERNAL_ID, IGNORE, NAME, PHONE, mapping_guess
from privacy.models import CustomerImport, RetentionRun

UPLOAD_MAX_BYTES = 200 * 1024 * 1024


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"), help_text=_("UTF-8, with a header row; comma or semicolon separated.")
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than 200 MB: import it with the import_customers command.")
            )
        return upload


def _field_choices(header: str):
    guess = mapping_guess([header])[header]
    choices = [
        (NAME, _("Name")),
        (EMAIL, _("Email(s)")),
        (PHONE, _("Phone(s)")),
        (EXTERNAL_ID, _("External id")),
        (IGNORE, _("Ignore")),
    ]
    if guess.startswith(ATTRIBUTE):
        choices.append((guess, _("Attribute “%(key)s”") % {"key": guess[len(ATTRIBUTE) :]}))
    return choices


class MappingForm(forms.Form):
    def __init__(self, *args, job: CustomerImport, **kwargs):
        super().__init__(*args, **kwargs)
        self.columns = []
        for index, header in enumerate(job.headers):
            name = f"col_{index}"
            self.fields[name] = forms.ChoiceField(
                label=header, choices=_field_choices(header), initial=job.mapping.get(header, IGNORE)
            )
            self.columns.append((name, header))

    def mapping(self) -> dict:
        return {header: self.cleaned_data[name] for name, header in self.columns}


@admin.register(CustomerImport)
class CustomerImportAdmin(admin.ModelAdmin):
    list_display = [
        "original_name",
        "status",
        "dry_run",
        "processed_rows",
        "total_rows",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "dry_run"]
    readonly_fields = [f.name for f in CustomerImport._meta.fields]

    def has_module_permission(self, request):
        return user_is_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return user_is_admin(request.user)

    def has_add_permission(self, request):
        return user_is_admin(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return user_is_admin(request.user)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/mapping/", wrap(self.mapping_view), name="privacy_customerimport_mapping"),
            path("<int:pk>/progress/", wrap(self.progress_view), name="privacy_customerimport_progress"),
            *super().get_urls(),
        ]

    def _check(self, request):
        if not user_is_admin(request.user):
            raise PermissionDenied

    def add_view(self, request, form_url="", extra_context=None):
        self._check(request)
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = customer_import_create(content=upload.read(), name=upload.name, user=request.user)
            except ValidationError as exc:
                form.add_error("file", exc)
            else:
                return redirect(reverse("admin:privacy_customerimport_mapping", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Import customers from CSV"),
            "opts": self.model._meta,
        }
        return render(request, "privacy/admin/import_upload.html", context)

    def mapping_view(self, request, pk):
        self._check(request)
        job = get_object_or_404(CustomerImport, pk=pk)
        form = MappingForm(request.POST or None, job=job)
        if request.method == "POST" and form.is_valid():
            try:
                customer_import_start(job=job, mapping=form.mapping(), dry_run="run" not in request.POST)
            except ValidationError as exc:
                for message in exc.messages:
                    messages.error(request, message)
            else:
                return redirect(reverse("admin:privacy_customerimport_progress", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "job": job,
            "opts": self.model._meta,
            "title": _("Map the columns of %(name)s") % {"name": job.original_name},
        }
        return render(request, "privacy/admin/import_mapping.html", context)

    def progress_view(self, request, pk):
        self._check(request)
        job = get_object_or_404(CustomerImport, pk=pk)
        report = job.report or {}
        context = {
            **self.admin_site.each_context(request),
            "job": job,
            "opts": self.model._meta,
            "report": report,
            "refused": [r for r in report.get("rows", []) if r["action"] == "refused"][:1000],
            "others": [r for r in report.get("rows", []) if r["action"] != "refused"][:1000],
            "running": job.status in (CustomerImport.Status.PENDING, CustomerImport.Status.RUNNING),
            "title": _("Import of %(name)s") % {"name": job.original_name},
        }
        return render(request, "privacy/admin/import_progress.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect(reverse("admin:privacy_customerimport_progress", args=[object_id]))


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "finished_at", "counts", "error"]
    readonly_fields = [f.name for f in RetentionRun._meta.fields]

    def has_module_permission(self, request):
        return user_is_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return user_is_admin(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
