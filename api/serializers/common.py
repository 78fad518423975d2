import json

from django.utils.translation import gettext as _
from rest_framework import serializers

MAX_JSON_BYTES = 32 * 1024


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class JsonObjectField(serializers.DictField):
    """A JSON object stored in a jsonb column: PostgreSQL refuses NUL characters in it,
    so they are refused here as input errors (400), and its size is bounded."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", serializers.JSONField(allow_null=True))
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if _has_nul(value):
            raise serializers.ValidationError(_("Text may not contain NUL characters."))
        if len(json.dumps(value)) > MAX_JSON_BYTES:
            raise serializers.ValidationError(_("At most 32 KB of JSON."))
        return value


class RefSerializer(serializers.Serializer):
    """A related object by id and name."""

    id = serializers.IntegerField()
    name = serializers.CharField()
