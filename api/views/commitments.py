"""Commitments (/api/v1/commitments/, /api/v1/customers/<id>/commitments/): read-only.

Thin: parse, ask commitments/selectors.py (which asks conversations/visibility.py), render.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.generics import GenericAPIView

from api.schema import example
from api.serializers.commitments import CommitmentQuerySerializer, CommitmentSerializer
from api.views.base import ApiMixin
from api.views.customers import visible_customer
from commitments import selectors
from commitments.models import CommitmentStatus

COMMITMENT_EXAMPLE = {
    "id": 12,
    "customer": 42,
    "case": 310,
    "message": 901,
    "channel_kind": "twitter",
    "text": "Replacement approved, ships in 5 days",
    "due_on": "2026-12-06",
    "status": "open",
    "past_due": False,
    "created_by": 3,
    "created_at": "2026-12-01T09:12:00Z",
    "closed_by": None,
    "closed_at": None,
    "close_note": "",
}


def _rows(request, *, customer_id=None):
    query = CommitmentQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    q = query.validated_data
    rows = selectors.commitments_visible_to(user=request.user).select_related("message__channel")
    rows = rows.defer(
        "message__channel__credentials", "message__html", "message__meta", "message__attachments"
    )
    customer_id = customer_id or q.get("customer")
    if customer_id:
        rows = rows.filter(customer_id=customer_id)
    if q["status"] != "all":
        rows = rows.filter(status=q["status"])
    today = timezone.localdate()
    if q.get("past_due"):
        rows = rows.filter(status=CommitmentStatus.OPEN, due_on__lt=today)
    return rows, today


class CommitmentListView(ApiMixin, GenericAPIView):
    serializer_class = CommitmentSerializer
    keyset_field = "created_at"

    @extend_schema(
        tags=["commitments"],
        summary="List commitments",
        description="What agents promised customers, newest first: the ones on messages this user may see. "
        "Open ones by default; `status=all` for every one.",
        parameters=[CommitmentQuerySerializer],
        responses=CommitmentSerializer(many=True),
        examples=[example("A page of commitments", COMMITMENT_EXAMPLE)],
    )
    def get(self, request):
        rows, today = _rows(request)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            CommitmentSerializer(page, many=True, context={"today": today}).data
        )


class CustomerCommitmentListView(ApiMixin, GenericAPIView):
    serializer_class = CommitmentSerializer
    keyset_field = "created_at"

    @extend_schema(
        tags=["commitments"],
        summary="A customer's commitments",
        description="The promises made to one customer on any channel (open ones by default).",
        parameters=[CommitmentQuerySerializer],
        responses=CommitmentSerializer(many=True),
        examples=[example("A page of commitments", COMMITMENT_EXAMPLE)],
    )
    def get(self, request, pk):
        customer = visible_customer(request, pk)
        rows, today = _rows(request, customer_id=customer.pk)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            CommitmentSerializer(page, many=True, context={"today": today}).data
        )
