from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers.common import JsonObjectField
from channels_adapters.models import Channel, ChannelKind
from conversations.models import CannedResponse, Team
from helpdesk.roles import ADMINS, SUPERVISORS
from kpis.models import SurveyAnswer


class TeamSerializer(serializers.ModelSerializer):
    members = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "name", "members"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_members(self, team) -> list[int]:
        return sorted(member.pk for member in team.members.all())


class AgentSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    teams = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "first_name", "last_name", "role", "teams"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=["agent", "supervisor", "admin"]))
    def get_role(self, user) -> str:
        groups = {g.name for g in user.groups.all()}
        if user.is_superuser or ADMINS in groups:
            return "admin"
        return "supervisor" if SUPERVISORS in groups else "agent"

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_teams(self, user) -> list[int]:
        return sorted(team.pk for team in user.teams.all())


class CannedResponseSerializer(serializers.ModelSerializer):
    team = serializers.IntegerField(source="team_id", allow_null=True, read_only=True)

    class Meta:
        model = CannedResponse
        fields = ["id", "shortcut", "title", "body", "team"]
        read_only_fields = fields


class ChannelSerializer(serializers.ModelSerializer):
    """Credentials go in and never come out: only which keys are set is shown."""

    credentials = JsonObjectField(
        write_only=True,
        required=False,
        help_text=_("Write-only. On update, merged into the stored ones; a key set to null is removed."),
    )
    credential_keys_set = serializers.SerializerMethodField()
    settings = JsonObjectField(required=False)
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    name = serializers.CharField(max_length=100)
    monthly_cost = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=Decimal("0"), required=False, coerce_to_string=False
    )
    webhook_url = serializers.CharField(read_only=True)

    class Meta:
        model = Channel
        fields = [
            "id",
            "kind",
            "name",
            "key",
            "is_active",
            "monthly_cost",
            "settings",
            "credentials",
            "credential_keys_set",
            "webhook_url",
            "created_at",
        ]
        read_only_fields = ["id", "key", "created_at", "webhook_url", "credential_keys_set"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_credential_keys_set(self, channel) -> list[str]:
        return sorted(k for k, v in (channel.credentials or {}).items() if v)


class ChannelUpdateSerializer(ChannelSerializer):
    kind = serializers.ChoiceField(choices=ChannelKind.choices, read_only=True)


class SurveyAnswerSerializer(serializers.ModelSerializer):
    case = serializers.IntegerField(source="case_id", read_only=True)
    customer = serializers.IntegerField(source="customer_id", read_only=True)
    channel = serializers.IntegerField(source="channel_id", allow_null=True, read_only=True)
    agent = serializers.IntegerField(source="agent_id", allow_null=True, read_only=True)
    team = serializers.IntegerField(source="team_id", allow_null=True, read_only=True)

    class Meta:
        model = SurveyAnswer
        fields = ["id", "kind", "score", "case", "customer", "channel", "agent", "team", "via", "answered_at"]
        read_only_fields = fields


class SurveyAnswerQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SurveyAnswer._meta.get_field("kind").choices, required=False)
    case = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    customer = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
