from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _storable(value) -> bool:
    """PostgreSQL stores neither NUL characters nor lone surrogates ("\\ud800" in JSON)."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


class StrictJSONParser(JSONParser):
    """JSON whose text PostgreSQL can store: anything else is the client's 400, never
    a database error (a 500) deep in a service."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if not _storable(data):
            raise ParseError(_("Text may not contain NUL characters or unpaired surrogates."))
        return data
