"""Every API error in one shape: {"error": {"code", "message", "fields"}} with its 4xx.

Scoped to the API's own views (api/views/base.py), so the KPI endpoint, which
predates it, keeps the responses its clients rely on. A service's Django
ValidationError (a rule the inbox enforces too: the 24-hour window, a merge that
would fold away another team's case) is the caller's mistake: 400 with the
service's words. Anything else that escapes is a bug and stays a 500.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

NON_FIELD = "non_field_errors"


def _flat(errors) -> list[str]:
    """Messages of a DRF error tree, in order (nested serializers give dicts of lists)."""
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in _flat(value)]
    if isinstance(errors, list | tuple):
        return [m for value in errors for m in _flat(value)]
    return [str(errors)]


def _converted(exc):
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    return exc


def api_exception_handler(exc, context):
    exc = _converted(exc)
    response = exception_handler(exc, context)  # status, WWW-Authenticate, Retry-After, rollback
    if response is None:
        return None
    fields = {}
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        detail = exc.detail if isinstance(exc.detail, dict) else {NON_FIELD: exc.detail}
        general = _flat(detail.get(NON_FIELD, []))
        fields = {name: _flat(value) for name, value in detail.items() if name != NON_FIELD}
        if general:
            message = " ".join(general)
        elif fields:
            name, messages = next(iter(fields.items()))
            message = _("%(field)s: %(message)s") % {"field": name, "message": messages[0]}
        else:
            message = _("The request is not valid.")
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = code if isinstance(code, str) else getattr(exc, "default_code", "error")
        message = " ".join(_flat(exc.detail)) if isinstance(exc, exceptions.APIException) else str(exc)
    response.data = {"error": {"code": code, "message": message, "fields": fields}}
    return response
