from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers.cases import ChannelRefSerializer
from conversations.models import DeliveryAttempt, Message


class AttachmentSerializer(serializers.Serializer):
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    url = serializers.CharField(help_text=_("Served to a signed-in agent who may see the message."))


class MessageSerializer(serializers.ModelSerializer):
    case = serializers.IntegerField(source="case_id", allow_null=True, read_only=True)
    channel = ChannelRefSerializer(read_only=True, allow_null=True)
    author_user = serializers.IntegerField(source="author_user_id", allow_null=True, read_only=True)
    attachments = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "case",
            "channel",
            "direction",
            "kind",
            "author",
            "author_user",
            "body",
            "attachments",
            "status",
            "error",
            "created_at",
            "sent_at",
            "delivered_at",
            "read_at",
        ]
        read_only_fields = fields

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_attachments(self, message) -> list:
        # Stored paths stay server-side: the API's authorized download serves the file
        # (to a token as to a session; the inbox has its own view for the browser).
        return [
            {
                "name": str(item.get("name") or ""),
                "content_type": str(item.get("content_type") or ""),
                "size": item.get("size") if isinstance(item.get("size"), int) else None,
                "url": reverse("api:message_attachment", kwargs={"pk": message.pk, "index": index}),
            }
            for index, item in enumerate(message.attachments or [])
            if isinstance(item, dict)
        ]


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "finished_at", "outcome", "error"]
        read_only_fields = fields


class MessageDeliverySerializer(MessageSerializer):
    delivery_attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "attempts", "delivery_attempts"]
        read_only_fields = fields


class TemplateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    language = serializers.CharField(max_length=20, default="en_US")
    parameters = serializers.ListField(
        child=serializers.CharField(max_length=1000), max_length=20, default=list
    )


class ReplySerializer(serializers.Serializer):
    body = serializers.CharField(max_length=20000, allow_blank=True, required=False, default="")
    channel = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,
        help_text=_("Channel id; by default the one the customer last wrote on."),
    )
    template = TemplateSerializer(
        required=False, help_text=_("A WhatsApp template, for when the 24-hour window is closed.")
    )


class NoteSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=20000, help_text=_("@username mentions a colleague."))


class RetrySerializer(serializers.Serializer):
    confirmed = serializers.BooleanField(
        default=False, help_text=_("Needed when the first send may have reached the customer already.")
    )


class TimelineQuerySerializer(serializers.Serializer):
    order = serializers.ChoiceField(choices=[("newest", "newest"), ("oldest", "oldest")], default="newest")
