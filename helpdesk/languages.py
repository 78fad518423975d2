"""Which language a text we send to a customer is written in.

The customer's own language where we know it (Customer.attributes["language"],
set by an agent, an import or the web chat), else the channel's `language`
setting (a web chat's "es", a voice line's "es-ES"), else settings.LANGUAGE_CODE.
Callers wrap the text's making in translation.override(customer_language(...)).
"""

from django.conf import settings
from django.utils.translation import get_supported_language_variant


def supported_language(code) -> str:
    """A language we have a catalog for ("es-ES" -> "es"), or "" when we have none."""
    if not isinstance(code, str) or not code.strip():
        return ""
    try:
        return get_supported_language_variant(code.strip().replace("_", "-").lower())
    except LookupError:
        return ""


def default_language() -> str:
    return supported_language(settings.LANGUAGE_CODE) or "en"


def channel_language(channel) -> str:
    return supported_language(((channel.settings if channel else None) or {}).get("language"))


def customer_language(*, customer=None, channel=None) -> str:
    attributes = (customer.attributes if customer is not None else None) or {}
    return supported_language(attributes.get("language")) or channel_language(channel) or default_language()
