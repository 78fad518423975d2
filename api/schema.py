"""OpenAPI details every operation shares: the error responses, documented once here."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: invalid, not_found, throttled, …")
    message = serializers.CharField(help_text="What went wrong, in words a person can act on.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Per input field, its problems (empty when the error is not about one field).",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


ERROR_DESCRIPTIONS = {
    "400": "Invalid input, or a rule refused the change (the message says which).",
    "401": "No credentials, or an API token that is unknown or revoked.",
    "403": "Signed in, but this role may not do that (or a browser request without its CSRF token).",
    "404": "No such object, or one outside what this user may see.",
    "405": "Method not allowed here.",
    "406": "Only JSON is served.",
    "415": "Send JSON.",
    "429": "Rate limit reached: retry after the Retry-After header's seconds.",
}

ERROR_EXAMPLES = {
    "400": {"code": "invalid", "message": "name: Ensure this field has no more than 200 characters.",
            "fields": {"name": ["Ensure this field has no more than 200 characters."]}},
    "404": {"code": "not_found", "message": "No such case, or it belongs to a team you are not in.",
            "fields": {}},
    "429": {"code": "throttled", "message": "Request was throttled. Expected available in 42 seconds.",
            "fields": {}},
}  # fmt: skip


class HelpdeskAutoSchema(AutoSchema):
    """Adds the shared error responses to every operation, so a client (and the schema
    fuzzer) knows every status it can get."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in ERROR_DESCRIPTIONS.items():
            if code in responses:
                continue
            response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
            response["description"] = description
            if code in ERROR_EXAMPLES:
                for content in response.get("content", {}).values():
                    content["examples"] = {
                        "error": {"value": {"error": ERROR_EXAMPLES[code]}, "summary": description}
                    }
            responses[code] = response
        return responses


def example(summary: str, value, *, request: bool = False, status: int = 200) -> OpenApiExample:
    return OpenApiExample(
        summary, value=value, request_only=request, response_only=not request, status_codes=[str(status)]
    )


def only_api_endpoints(endpoints):
    """The schema describes the API app's views (not the KPI endpoint, nor the schema's own)."""
    return [
        (path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
        if getattr(callback, "cls", None) is not None
        and (
            callback.cls.__module__.startswith(("api.views", "outreach.api", "privacy.api"))
            or _is_api_view(callback.cls)
        )
    ]


def _is_api_view(cls) -> bool:
    # Apps with their own API module (knowledge.api_views) build on ApiMixin: the same API.
    from api.views.base import ApiMixin

    return issubclass(cls, ApiMixin)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (hdk_…), made at /account/tokens/.",
        }
