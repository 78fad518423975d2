"""Customers, their addresses, merges and their one timeline. Thin: parse, ask, call, render."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from api.schema import example
from api.serializers.customers import (
    CustomerCreateSerializer,
    CustomerListQuerySerializer,
    CustomerMergeResultSerializer,
    CustomerMergeSerializer,
    CustomerSerializer,
    CustomerUpdateSerializer,
    IdentityCreateSerializer,
    IdentitySerializer,
)
from api.serializers.messages import MessageSerializer, TimelineQuerySerializer
from api.views.base import ApiMixin, not_found
from conversations.selectors import thread_messages_visible
from conversations.visibility import customers_visible_to
from customers import selectors, services
from customers.models import Customer

NOT_VISIBLE = _("No such customer, or none of their cases is yours to see.")

CUSTOMER_EXAMPLE = {
    "id": 42,
    "name": "Dee Novak",
    "attributes": {"plan": "gold", "last_order": 771},
    "created_at": "2026-11-30T09:12:00Z",
    "identities": [
        {"id": 7, "kind": "email", "address": "dee@example.com", "display_name": "Dee Novak",
         "created_at": "2026-11-30T09:12:00Z"},
        {"id": 8, "kind": "phone", "address": "+14155550199", "display_name": "",
         "created_at": "2026-11-30T09:15:00Z"},
    ],
}  # fmt: skip
MESSAGE_EXAMPLE = {
    "id": 901,
    "case": 310,
    "channel": {"id": 3, "kind": "whatsapp", "name": "WhatsApp +1 555 0100"},
    "direction": "in",
    "kind": "text",
    "author": "customer",
    "author_user": None,
    "body": "Can I change the delivery address of order 771?",
    "attachments": [],
    "status": None,
    "error": "",
    "created_at": "2026-11-30T09:12:00Z",
    "sent_at": None,
    "delivered_at": None,
    "read_at": None,
}


def visible_customer(request, pk) -> Customer:
    customer = customers_visible_to(user=request.user).filter(pk=pk).prefetch_related("identities").first()
    if customer is None:
        not_found(NOT_VISIBLE)
    return customer


class CustomerListView(ApiMixin, GenericAPIView):
    serializer_class = CustomerSerializer
    keyset_field = "created_at"

    @extend_schema(
        tags=["customers"],
        summary="List and search customers",
        description="Customers this user may see, newest first. `q` matches the name or any address; "
        "a phone number matches however it is written.",
        parameters=[CustomerListQuerySerializer],
        responses=CustomerSerializer(many=True),
        examples=[example("A page of customers", CUSTOMER_EXAMPLE)],
    )
    def get(self, request):
        query = CustomerListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data.get("q", "").strip()
        customers = selectors.customers_matching(q) if q else Customer.objects.all()
        customers = customers_visible_to(user=request.user, customers=customers).prefetch_related(
            "identities"
        )
        rows = self.paginate_queryset(customers)
        return self.get_paginated_response(CustomerSerializer(rows, many=True).data)

    @extend_schema(
        tags=["customers"],
        summary="Create a customer",
        description="With their addresses, normalized as on arrival. An address that already "
        "belongs to someone is refused (merge instead).",
        request=CustomerCreateSerializer,
        responses={201: CustomerSerializer},
        examples=[
            example(
                "A customer with an email",
                {"name": "Dee Novak", "attributes": {"plan": "gold"},
                 "identities": [{"kind": "email", "address": "Dee@Example.com"}]},
                request=True,
            ),
            example("Created", CUSTOMER_EXAMPLE, status=201),
        ],
    )  # fmt: skip
    def post(self, request):
        data = CustomerCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        with transaction.atomic():
            customer = services.customer_create(name=values["name"], attributes=values["attributes"])
            for identity in values["identities"]:
                services.identity_add(customer=customer, kind=identity["kind"], address=identity["address"])
        customer = Customer.objects.prefetch_related("identities").get(pk=customer.pk)
        return Response(CustomerSerializer(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailView(ApiMixin, GenericAPIView):
    serializer_class = CustomerSerializer

    @extend_schema(
        tags=["customers"],
        summary="Read a customer with their addresses",
        responses=CustomerSerializer,
        examples=[example("A customer", CUSTOMER_EXAMPLE)],
    )
    def get(self, request, pk):
        return Response(CustomerSerializer(visible_customer(request, pk)).data)

    @extend_schema(
        tags=["customers"],
        summary="Change a customer's name or attributes",
        description="Attributes are merged key by key; a key set to null is removed.",
        request=CustomerUpdateSerializer,
        responses=CustomerSerializer,
        examples=[
            example("Add an attribute", {"attributes": {"last_order": 771}}, request=True),
            example("Updated", CUSTOMER_EXAMPLE),
        ],
    )
    def patch(self, request, pk):
        customer = visible_customer(request, pk)
        data = CustomerUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.customer_update(
            customer=customer,
            name=data.validated_data.get("name"),
            attributes=data.validated_data.get("attributes"),
        )
        return Response(CustomerSerializer(visible_customer(request, pk)).data)


class CustomerIdentitiesView(ApiMixin, GenericAPIView):
    serializer_class = IdentitySerializer

    @extend_schema(
        tags=["customers"],
        summary="Add an address to a customer",
        description="Normalized as on arrival (phone to E.164, email lower-cased). An address of "
        "another customer is refused: merge the two instead.",
        request=IdentityCreateSerializer,
        responses={201: IdentitySerializer},
        examples=[
            example("A phone in any format", {"kind": "phone", "address": "(415) 555-0199"}, request=True),
            example("Added", CUSTOMER_EXAMPLE["identities"][1], status=201),
        ],
    )
    def post(self, request, pk):
        customer = visible_customer(request, pk)
        data = IdentityCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        identity = services.identity_add(customer=customer, **data.validated_data)
        return Response(IdentitySerializer(identity).data, status=status.HTTP_201_CREATED)


class CustomerIdentityView(ApiMixin, GenericAPIView):
    serializer_class = IdentitySerializer

    @extend_schema(
        tags=["customers"],
        summary="Remove an address from a customer",
        description="Their messages stay; the last address of a customer with messages cannot go.",
        responses={204: OpenApiResponse(description="Removed.")},
    )
    def delete(self, request, pk, identity_id):
        customer = visible_customer(request, pk)
        identity = get_object_or_404(customer.identities.all(), pk=identity_id)
        services.identity_remove(identity=identity)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerMergeView(ApiMixin, GenericAPIView):
    serializer_class = CustomerMergeResultSerializer

    @extend_schema(
        tags=["customers"],
        summary="Merge another customer into this one",
        description="Their addresses, messages and cases move here and the other customer is deleted; "
        "the merge is recorded (who, when, what moved). A case in progress of another team stops it.",
        request=CustomerMergeSerializer,
        responses=CustomerMergeResultSerializer,
        examples=[
            example("Merge customer 43 into this one", {"other": 43}, request=True),
            example(
                "Merged",
                {"id": 5, "survivor": CUSTOMER_EXAMPLE, "merged_customer_id": 43,
                 "moved": {"identities": 1, "messages": 4, "cases": 1}, "merged_at": "2026-12-01T10:00:00Z"},
            ),
        ],
    )  # fmt: skip
    def post(self, request, pk):
        survivor = visible_customer(request, pk)
        data = CustomerMergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        other = customers_visible_to(user=request.user).filter(pk=data.validated_data["other"]).first()
        if other is None:
            not_found(NOT_VISIBLE)
        record = services.merge_customers(survivor=survivor, merged=other, merged_by=request.user)
        record.survivor = visible_customer(request, pk)
        return Response(CustomerMergeResultSerializer(record).data)


class CustomerTimelineView(ApiMixin, GenericAPIView):
    serializer_class = MessageSerializer
    keyset_field = "created_at"

    def keyset_descending(self, request):
        return request.query_params.get("order", "newest") != "oldest"

    @extend_schema(
        tags=["customers"],
        summary="A customer's whole timeline",
        description="Every message on every channel and case, as the inbox shows it to this user "
        "(another team's internal notes never). Newest first by default; `order=oldest` reverses.",
        parameters=[TimelineQuerySerializer],
        responses=MessageSerializer(many=True),
        examples=[example("A page of the timeline", MESSAGE_EXAMPLE)],
    )
    def get(self, request, pk):
        customer = visible_customer(request, pk)
        TimelineQuerySerializer(data=request.query_params).is_valid(raise_exception=True)
        messages = (
            thread_messages_visible(thread=customer.thread.pk, user=request.user)
            .select_related("channel")
            .defer("channel__credentials")
        )
        rows = self.paginate_queryset(messages)
        return self.get_paginated_response(MessageSerializer(rows, many=True).data)
