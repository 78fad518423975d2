"""Cases and the messages written on them: list, read, change, reply, note, retry."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from api import services as api_services
from api.schema import example
from api.serializers.cases import CaseListQuerySerializer, CaseSerializer, CaseUpdateSerializer
from api.serializers.messages import (
    MessageDeliverySerializer,
    MessageSerializer,
    NoteSerializer,
    ReplySerializer,
    RetrySerializer,
)
from api.views.base import ApiMixin, not_found
from api.views.customers import MESSAGE_EXAMPLE
from channels_adapters.models import Channel
from conversations import cases as case_services
from conversations import delivery, services
from conversations.attachment_views import attachment_response
from conversations.attachments import attachment_of
from conversations.models import Case, Message
from conversations.selectors import cases_filtered
from conversations.visibility import case_visible, cases_visible_to, customer_visible, messages_visible_to

CASE_NOT_VISIBLE = _("No such case, or it belongs to a team you are not in.")
MESSAGE_NOT_VISIBLE = _("No such message, or it is not yours to see.")

CASE_EXAMPLE = {
    "id": 310,
    "customer": {"id": 42, "name": "Dee Novak"},
    "status": "open",
    "subject": "Can I change the delivery address of order 771?",
    "assignee": 5,
    "team": 2,
    "priority": 1,
    "labels": [{"id": 1, "name": "shipping", "color": "#2563eb"}],
    "origin_channel": {"id": 1, "kind": "api", "name": "Shop backend (API)"},
    "opened_at": "2026-11-30T09:12:00Z",
    "first_response_at": None,
    "resolved_at": None,
    "reopen_count": 0,
    "snoozed_until": None,
    "waiting_since": "2026-11-30T09:12:00Z",
    "last_message_at": "2026-11-30T09:12:00Z",
    "updated_at": "2026-11-30T09:12:00Z",
}
REPLY_EXAMPLE = {
    **MESSAGE_EXAMPLE,
    "id": 902,
    "direction": "out",
    "author": "agent",
    "author_user": 5,
    "body": "Yes: send us the new address.",
    "status": "queued",
}
DELIVERY_EXAMPLE = {
    **REPLY_EXAMPLE,
    "status": "failed",
    "error": "The number is not on WhatsApp.",
    "attempts": 1,
    "delivery_attempts": [
        {"number": 1, "started_at": "2026-11-30T09:20:00Z", "finished_at": "2026-11-30T09:20:01Z",
         "outcome": "failed", "error": "The number is not on WhatsApp."}
    ],
}  # fmt: skip


def _cases(user):
    return (
        cases_visible_to(user=user)
        .select_related("thread__customer", "origin_channel")
        .defer("origin_channel__credentials")
        .prefetch_related("labels")
    )


def visible_case(request, pk) -> Case:
    case = _cases(request.user).filter(pk=pk).first()
    if case is None:
        not_found(CASE_NOT_VISIBLE)
    return case


class CaseListView(ApiMixin, GenericAPIView):
    serializer_class = CaseSerializer

    @extend_schema(
        tags=["cases"],
        summary="List cases",
        description="Cases this user may see, newest first, with the inbox's filters.",
        parameters=[CaseListQuerySerializer],
        responses=CaseSerializer(many=True),
        examples=[example("A page of cases", CASE_EXAMPLE)],
    )
    def get(self, request):
        query = CaseListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        cases = cases_filtered(
            _cases(request.user),
            channel=q.get("channel"),
            team=q.get("team"),
            label=q.get("label"),
            agent=q.get("assignee"),
            priority=q.get("priority"),
        )
        if "status" in q:
            cases = cases.filter(status=q["status"])
        if "customer" in q:
            cases = cases.filter(thread__customer_id=q["customer"])
        if "updated_since" in q:
            cases = cases.filter(updated_at__gte=q["updated_since"])
        rows = self.paginate_queryset(cases)
        return self.get_paginated_response(CaseSerializer(rows, many=True).data)


class CaseDetailView(ApiMixin, GenericAPIView):
    serializer_class = CaseSerializer

    @extend_schema(
        tags=["cases"],
        summary="Read a case",
        responses=CaseSerializer,
        examples=[example("A case", CASE_EXAMPLE)],
    )
    def get(self, request, pk):
        return Response(CaseSerializer(visible_case(request, pk)).data)

    @extend_schema(
        tags=["cases"],
        summary="Change a case's status, assignee, team, priority, labels or snooze",
        description="Through the inbox's own rules and timeline events, all or nothing. "
        "Snoozing needs `snoozed_until` in the future; reopening is refused while another case of "
        "the customer is in progress.",
        request=CaseUpdateSerializer,
        responses=CaseSerializer,
        examples=[
            example("Resolve", {"status": "resolved"}, request=True),
            example("Snooze", {"status": "snoozed", "snoozed_until": "2026-12-02T09:00:00Z"}, request=True),
            example("Route", {"team": 2, "assignee": 5, "priority": 2, "labels": [1]}, request=True),
            example("Changed", {**CASE_EXAMPLE, "status": "resolved"}),
        ],
    )
    def patch(self, request, pk):
        case = visible_case(request, pk)
        data = CaseUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = data.validated_data
        api_services.case_update(
            case=case,
            by=request.user,
            status=changes.get("status"),
            snoozed_until=changes.get("snoozed_until"),
            assignee=changes.get("assignee", api_services.UNCHANGED),
            team=changes.get("team"),
            priority=changes.get("priority"),
            labels=changes.get("labels"),
        )
        # Read again through the rule: a case moved to another team may be out of sight now.
        case = _cases(request.user).filter(pk=pk).first() or Case.objects.get(pk=pk)
        return Response(CaseSerializer(case).data)


class CaseReplyView(ApiMixin, GenericAPIView):
    serializer_class = MessageSerializer

    @extend_schema(
        tags=["messages"],
        summary="Reply to the customer on a case",
        description="Queued now, sent by a worker (follow its `status` on the message). By default on "
        "the channel the customer last wrote on. The channel's rules apply as in the inbox: a "
        "WhatsApp or Messenger reply outside the 24-hour window, or to a customer the channel cannot "
        "reach, is a 400 with the reason.",
        request=ReplySerializer,
        responses={201: MessageSerializer},
        examples=[
            example("Free text", {"body": "Yes: send us the new address."}, request=True),
            example(
                "A WhatsApp template (window closed)",
                {"template": {"name": "order_update", "language": "es", "parameters": ["Dee", "#771"]}},
                request=True,
            ),
            example("Queued", REPLY_EXAMPLE, status=201),
        ],
    )
    def post(self, request, pk):
        case = visible_case(request, pk)
        data = ReplySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        channel = None
        if values.get("channel"):
            channel = Channel.objects.filter(pk=values["channel"], is_active=True).first()
            if channel is None:
                raise ValidationError({"channel": [_("That channel is not available.")]})
        meta = {"template": values["template"]} if values.get("template") else None
        message = services.send_reply(
            case=case, author_user=request.user, body=values["body"], channel=channel, meta=meta
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class CaseNoteView(ApiMixin, GenericAPIView):
    serializer_class = MessageSerializer

    @extend_schema(
        tags=["messages"],
        summary="Add an internal note to a case",
        description="Seen by agents who may see the case, never by the customer; @username notifies "
        "a colleague who may see it.",
        request=NoteSerializer,
        responses={201: MessageSerializer},
        examples=[
            example("A note", {"body": "Order 771 shipped; @ana please confirm."}, request=True),
            example(
                "Added",
                {
                    **REPLY_EXAMPLE,
                    "kind": "note",
                    "channel": None,
                    "status": None,
                    "body": "Order 771 shipped.",
                },
                status=201,
            ),
        ],
    )
    def post(self, request, pk):
        case = visible_case(request, pk)
        data = NoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = case_services.case_note_add(
            case=case, author_user=request.user, body=data.validated_data["body"]
        )
        return Response(MessageSerializer(note).data, status=status.HTTP_201_CREATED)


def visible_message(request, pk) -> Message:
    message = (
        messages_visible_to(user=request.user, messages=Message.objects.filter(pk=pk))
        .select_related("channel", "case", "thread__customer")
        .defer("channel__credentials")
        .prefetch_related("delivery_attempts")
        .first()
    )
    # A message is reached through its customer: one this user may not see hides all
    # of their messages, the history an open case would show included.
    if message is None or not customer_visible(user=request.user, customer=message.thread.customer):
        not_found(MESSAGE_NOT_VISIBLE)
    return message


class MessageDetailView(ApiMixin, GenericAPIView):
    serializer_class = MessageDeliverySerializer

    @extend_schema(
        tags=["messages"],
        summary="Read a message and its delivery status",
        description="Status moves queued → sent → delivered → read, or failed with the provider's "
        "reason; every send attempt is listed.",
        responses=MessageDeliverySerializer,
        examples=[example("A failed reply", DELIVERY_EXAMPLE)],
    )
    def get(self, request, pk):
        return Response(MessageDeliverySerializer(visible_message(request, pk)).data)


class MessageRetryView(ApiMixin, GenericAPIView):
    serializer_class = MessageDeliverySerializer

    @extend_schema(
        tags=["messages"],
        summary="Send a failed message again",
        description="Only a failed message, or one whose first send may have arrived (then with "
        "`confirmed: true`).",
        request=RetrySerializer,
        responses=MessageDeliverySerializer,
        examples=[
            example("Retry", {"confirmed": False}, request=True),
            example("Queued again", {**DELIVERY_EXAMPLE, "status": "queued", "error": ""}),
        ],
    )
    def post(self, request, pk):
        message = visible_message(request, pk)
        # A retry is a write on the case: seeing the message as history is not enough.
        if message.case is not None and not case_visible(user=request.user, case=message.case):
            not_found(MESSAGE_NOT_VISIBLE)
        if message.case is None:
            raise ValidationError(_("This message belongs to no case."))
        data = RetrySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        delivery.message_retry(message=message, by=request.user, confirmed=data.validated_data["confirmed"])
        return Response(MessageDeliverySerializer(visible_message(request, pk)).data)


class MessageAttachmentView(ApiMixin, GenericAPIView):
    @extend_schema(
        tags=["messages"],
        summary="Download a file of a message",
        description="The bytes of attachment `index` (0-based, in the message's `attachments`), "
        "for anyone who may read the message. Files a browser could run (HTML, SVG) come as a "
        "download.",
        responses={(200, "*/*"): OpenApiTypes.BINARY},
    )
    def get(self, request, pk, index):
        message = visible_message(request, pk)
        record = attachment_of(message, index)
        if record is None:
            not_found(_("No such attachment."))
        return attachment_response(request, record)
