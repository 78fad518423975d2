"""GET /api/v1/customers/<id>/export/: the customer's archive (GDPR 15 and 20). Thin."""

import json

from django.http import FileResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer

from api.views.base import ApiMixin
from api.views.customers import visible_customer
from helpdesk.roles import user_is_supervisor
from privacy.export import customer_export_archive


class IsSupervisor(BasePermission):
    message = _("Customer data exports are for supervisors and admins.")

    def has_permission(self, request, view):
        return user_is_supervisor(request.user)


class ZipRenderer(BaseRenderer):
    """Lets a client ask for application/zip; errors still come as the API's JSON."""

    media_type = "application/zip"
    format = "zip"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()


class CustomerExportView(ApiMixin, GenericAPIView):
    permission_classes = [IsSupervisor]
    renderer_classes = [JSONRenderer, ZipRenderer]

    @extend_schema(
        tags=["customers"],
        summary="Export everything held about a customer",
        description="A zip archive: `customer.json` (profile, identities, cases, messages and internal "
        "notes, survey answers, consents) and `files/` (their attachments). For GDPR access and "
        "portability requests; each export is recorded in the audit log. Supervisors and admins.",
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The archive.")
        },
    )
    def get(self, request, pk):
        customer = visible_customer(request, pk)
        archive = customer_export_archive(customer=customer, user=request.user, request=request)
        return FileResponse(
            archive,
            as_attachment=True,
            filename=f"customer-{customer.pk}.zip",
            content_type="application/zip",
        )
