from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers.common import JsonObjectField
from customers.models import Customer, CustomerMerge, Identity, IdentityKind


class IdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Identity
        fields = ["id", "kind", "address", "display_name", "created_at"]
        read_only_fields = fields


class IdentityCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    address = serializers.CharField(
        max_length=320, help_text=_("Normalized as on arrival: phones to E.164, emails lower-cased.")
    )


class CustomerSerializer(serializers.ModelSerializer):
    identities = IdentitySerializer(many=True, read_only=True)
    attributes = serializers.DictField(child=serializers.JSONField(), read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "name", "attributes", "created_at", "identities"]
        read_only_fields = fields


class CustomerCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    attributes = JsonObjectField(required=False, default=dict)
    identities = IdentityCreateSerializer(many=True, required=False, default=list)

    def validate_identities(self, value):
        if len(value) > 20:
            raise serializers.ValidationError(_("At most 20 addresses at once."))
        return value


class CustomerUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    attributes = JsonObjectField(
        required=False,
        help_text=_("Merged into the stored attributes key by key; a key set to null is removed."),
    )


class CustomerMergeSerializer(serializers.Serializer):
    other = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text=_("The customer folded into this one (and deleted).")
    )


class CustomerMergeResultSerializer(serializers.ModelSerializer):
    survivor = CustomerSerializer(read_only=True)
    moved = serializers.SerializerMethodField()

    class Meta:
        model = CustomerMerge
        fields = ["id", "survivor", "merged_customer_id", "moved", "merged_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_moved(self, record) -> dict:
        return record.moved


class CustomerListQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False,
        max_length=200,
        help_text=_("Name, email or any address contains it; a phone number matches in any format."),
    )
