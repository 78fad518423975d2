"""Commitments in the API: what was promised, read-only (commitments/ owns the writes)."""

from rest_framework import serializers

from commitments.models import Commitment, CommitmentStatus


class CommitmentSerializer(serializers.ModelSerializer):
    customer = serializers.IntegerField(source="customer_id", read_only=True)
    case = serializers.IntegerField(source="case_id", read_only=True, allow_null=True)
    message = serializers.IntegerField(source="message_id", read_only=True)
    channel_kind = serializers.SerializerMethodField(help_text="The channel the promise was made on.")
    past_due = serializers.SerializerMethodField(help_text="Open, and its due date is before today.")
    created_by = serializers.IntegerField(source="created_by_id", read_only=True, allow_null=True)
    closed_by = serializers.IntegerField(source="closed_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Commitment
        fields = [
            "id",
            "customer",
            "case",
            "message",
            "channel_kind",
            "text",
            "due_on",
            "status",
            "past_due",
            "created_by",
            "created_at",
            "closed_by",
            "closed_at",
            "close_note",
        ]
        read_only_fields = fields

    def get_channel_kind(self, obj) -> str | None:
        channel = obj.message.channel
        return channel.kind if channel is not None else None

    def get_past_due(self, obj) -> bool:
        return bool(obj.is_open and obj.due_on and obj.due_on < self.context["today"])


class CommitmentQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[*CommitmentStatus.values, "all"],
        default=CommitmentStatus.OPEN,
        help_text="`all` for every one.",
    )
    past_due = serializers.BooleanField(required=False, help_text="Only open ones past their due date.")
    customer = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
