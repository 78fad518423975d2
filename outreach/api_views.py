"""REST API: POST /api/v1/outreach/ starts one; GET /api/v1/outreach/<id>/ follows it."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from api.schema import example
from api.views.base import ApiMixin, not_found
from conversations.models import Case
from conversations.visibility import case_visible, customers_visible_to
from outreach import services
from outreach.models import Advance, Goal, Outreach, Source

NOT_VISIBLE = _("No such customer, or one you may not see.")
MAX_ID = 2**63 - 1
OUTREACH_NOT_VISIBLE = _("No such outreach, or one whose customer you may not see.")


class ChainStepSerializer(serializers.Serializer):
    channel = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="Channel id (GET /api/v1/channels/)."
    )
    advance_on = serializers.ChoiceField(choices=Advance.choices, default=Advance.UNDELIVERED)
    wait_minutes = serializers.IntegerField(min_value=0, max_value=services.MAX_WAIT_MINUTES, default=60)


class OutreachCreateSerializer(serializers.Serializer):
    customer = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    case = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True)
    body = serializers.CharField(max_length=4096)
    subject = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    goal = serializers.ChoiceField(choices=Goal.choices, default=Goal.DELIVERED)
    chain = ChainStepSerializer(many=True, min_length=1, max_length=services.MAX_STEPS)
    options = serializers.DictField(
        child=serializers.DictField(),
        required=False,
        default=dict,
        help_text='Per channel kind, e.g. {"whatsapp": {"template": {"name", "language", "parameters"}}}: '
        "the template goes only when the 24-hour window is closed.",
    )


class StepSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    channel = serializers.IntegerField(source="channel_id")
    advance_on = serializers.CharField()
    wait_minutes = serializers.IntegerField()
    state = serializers.CharField()
    message = serializers.IntegerField(source="message_id", allow_null=True)
    message_status = serializers.SerializerMethodField()
    due_at = serializers.DateTimeField(allow_null=True)
    claimed_at = serializers.DateTimeField(allow_null=True)
    deadline_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()

    def get_message_status(self, step) -> str | None:
        return step.message.status if step.message_id else None


class OutreachSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.IntegerField(source="customer_id")
    case = serializers.IntegerField(source="case_id", allow_null=True)
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
    source = serializers.CharField()
    goal = serializers.CharField()
    status = serializers.CharField()
    stop_reason = serializers.CharField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    steps = StepSerializer(many=True)


def _outreach(pk) -> Outreach | None:
    return (
        Outreach.objects.filter(pk=pk).select_related("customer").prefetch_related("steps__message").first()
    )


class OutreachCreateView(ApiMixin, GenericAPIView):
    serializer_class = OutreachSerializer

    @extend_schema(
        tags=["outreach"],
        summary="Start an outreach to a customer",
        description="One message, tried on each channel of the chain in turn: a step moves on when "
        "its message failed, or when it was not delivered (or not read) within `wait_minutes`. It stops "
        "at the goal or when the customer replies anywhere. Channels the customer opted out of are "
        "skipped, and quiet hours in the customer's time zone delay a step. Bad input is a 400 and "
        "starts nothing.",
        request=OutreachCreateSerializer,
        responses={201: OutreachSerializer},
        examples=[
            example(
                "Order shipped: WhatsApp, then SMS, then email",
                {
                    "customer": 42,
                    "body": "Your order #771 shipped today.",
                    "chain": [
                        {"channel": 3, "advance_on": "undelivered", "wait_minutes": 30},
                        {"channel": 5, "advance_on": "undelivered", "wait_minutes": 60},
                        {"channel": 1, "advance_on": "failed"},
                    ],
                    "options": {"whatsapp": {"template": {"name": "order_shipped", "language": "es"}}},
                },
                request=True,
            )
        ],
    )
    def post(self, request):
        data = OutreachCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        customer = customers_visible_to(user=request.user).filter(pk=values["customer"]).first()
        if customer is None:
            not_found(NOT_VISIBLE)
        case = None
        if values.get("case"):
            case = Case.objects.select_related("thread").filter(pk=values["case"]).first()
            if case is None or not case_visible(user=request.user, case=case):
                not_found(_("No such case, or it belongs to a team you are not in."))
        outreach = services.outreach_start(
            customer=customer,
            case=case,
            chain=[dict(step) for step in values["chain"]],
            body=values["body"],
            subject=values.get("subject", ""),
            goal=values["goal"],
            options=values.get("options") or {},
            source=Source.API,
            created_by=request.user,
        )
        return Response(OutreachSerializer(_outreach(outreach.pk)).data, status=status.HTTP_201_CREATED)


class OutreachDetailView(ApiMixin, GenericAPIView):
    serializer_class = OutreachSerializer

    @extend_schema(tags=["outreach"], summary="An outreach and where each of its steps is")
    def get(self, request, pk):
        outreach = _outreach(pk)
        if (
            outreach is None
            or not customers_visible_to(user=request.user).filter(pk=outreach.customer_id).exists()
        ):
            not_found(OUTREACH_NOT_VISIBLE)
        return Response(OutreachSerializer(outreach).data)
