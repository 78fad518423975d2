from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from channels_adapters.models import Channel
from conversations.models import Case, CaseStatus, Label, Priority, Team


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "color"]
        read_only_fields = fields


class ChannelRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Channel
        fields = ["id", "kind", "name"]
        read_only_fields = fields


class CaseSerializer(serializers.ModelSerializer):
    customer = serializers.SerializerMethodField()
    labels = LabelSerializer(many=True, read_only=True)
    origin_channel = ChannelRefSerializer(read_only=True, allow_null=True)
    assignee = serializers.IntegerField(source="assignee_id", allow_null=True, read_only=True)
    team = serializers.IntegerField(source="team_id", allow_null=True, read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "customer",
            "status",
            "subject",
            "assignee",
            "team",
            "priority",
            "labels",
            "origin_channel",
            "opened_at",
            "first_response_at",
            "resolved_at",
            "reopen_count",
            "snoozed_until",
            "waiting_since",
            "last_message_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            "required": ["id", "name"],
        }
    )
    def get_customer(self, case) -> dict:
        customer = case.thread.customer
        return {"id": customer.pk, "name": customer.name}


class CaseUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CaseStatus.choices, required=False)
    snoozed_until = serializers.DateTimeField(
        required=False, help_text=_("With status 'snoozed': when the case opens again (in the future).")
    )
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        allow_null=True,
        help_text=_("An agent's id, or null to unassign."),
    )
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    labels = serializers.PrimaryKeyRelatedField(
        queryset=Label.objects.all(), many=True, required=False, help_text=_("Replaces the case's labels.")
    )

    def validate(self, data):
        if data.get("status") == CaseStatus.SNOOZED and not data.get("snoozed_until"):
            raise serializers.ValidationError({"snoozed_until": [_("Say until when to snooze.")]})
        if "snoozed_until" in data and data.get("status") != CaseStatus.SNOOZED:
            raise serializers.ValidationError({"snoozed_until": [_("Only with status 'snoozed'.")]})
        if not data:
            raise serializers.ValidationError(_("Send at least one field to change."))
        return data


class CaseListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CaseStatus.choices, required=False)
    channel = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    team = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    assignee = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    label = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    customer = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    updated_since = serializers.DateTimeField(
        required=False, help_text=_("Cases changed at or after this time (ISO 8601).")
    )
