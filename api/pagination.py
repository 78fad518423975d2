"""Cursor pagination by keyset: `{"results": [...], "next": url|null}` (DESIGN.md's REST contract).

The cursor is the last row's (sort value, id), opaque to clients: the next page
seeks past it through the index, so page 1,000 costs what page 1 costs, and rows
arriving meanwhile never shift a page (no OFFSET).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


def _encode(value, pk: int) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else value, pk])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, *, is_datetime: bool):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, pk = json.loads(raw)
        # Bounded like the bigint column: a forged id must be a 400, not a database error.
        if not isinstance(pk, int) or isinstance(pk, bool) or not 0 <= pk < 2**63:
            raise ValueError
        if is_datetime:
            value = datetime.fromisoformat(value)
            if timezone.is_naive(value):
                raise ValueError
        elif value is not None and not isinstance(value, int):
            raise ValueError
        return value, pk
    except (ValueError, TypeError, UnicodeDecodeError):
        raise ValidationError(
            {"cursor": [_("This cursor is not one of ours: use the 'next' link.")]}
        ) from None


class KeysetPagination(BasePagination):
    """The view says what it sorts on: `keyset_field` (unique together with the id) and
    `keyset_descending(request)`."""

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"

    def _page_size(self, request) -> int:
        conf = settings.HELPDESK_API
        raw = request.query_params.get(self.page_size_query_param)
        if raw in (None, ""):
            return conf["PAGE_SIZE"]
        if not raw.isdigit() or not 1 <= int(raw) <= conf["MAX_PAGE_SIZE"]:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        _("A whole number from 1 to %(max)d.") % {"max": conf["MAX_PAGE_SIZE"]}
                    ]
                }
            )
        return int(raw)

    def paginate_queryset(self, queryset, request, view=None):
        field = getattr(view, "keyset_field", "id")
        descending = view.keyset_descending(request) if hasattr(view, "keyset_descending") else True
        size = self._page_size(request)
        if field in ("id", "pk"):
            queryset = queryset.order_by("-pk" if descending else "pk")
        else:
            order = F(field).desc() if descending else F(field).asc()
            queryset = queryset.order_by(order, "-pk" if descending else "pk")
        cursor = request.query_params.get(self.cursor_query_param)
        if cursor:
            is_datetime = field not in ("id", "pk")
            value, pk = _decode(cursor, is_datetime=is_datetime)
            beyond, pk_beyond = ("lt", "pk__lt") if descending else ("gt", "pk__gt")
            if field in ("id", "pk"):
                queryset = queryset.filter(**{pk_beyond: pk})
            else:
                queryset = queryset.filter(
                    Q(**{f"{field}__{beyond}": value}) | Q(**{field: value, pk_beyond: pk})
                )
        rows = list(queryset[: size + 1])
        self.next_url = None
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            value = last.pk if field in ("id", "pk") else getattr(last, field)
            self.next_url = replace_query_param(
                request.build_absolute_uri(), self.cursor_query_param, _encode(value, last.pk)
            )
        return rows

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.next_url})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next page, or null on the last one.",
                    "example": "https://help.example.com/api/v1/cases/?cursor=WzMwOSwgMzA5XQ",
                },
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position from the previous page's `next` link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": "Rows per page (default 50, at most 200).",
                "schema": {"type": "integer", "minimum": 1, "maximum": 200},
            },
        ]
