"""Reads of the REST API app that are not the core's (the core's selectors answer the rest)."""

from api.models import ApiToken


def api_tokens_for(*, user):
    """The user's tokens, live ones first."""
    return ApiToken.objects.filter(user=user).order_by("-revoked_at", "-created_at")
