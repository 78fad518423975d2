"""A website-chat channel's options (Channel.settings) read with their defaults.

The admin writes them as JSON in Django admin; everything here tolerates a
missing or mistyped key, because the widget must still load (with the default)
while an admin fixes a typo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext

PRECHAT_FIELDS = ("name", "email", "phone")
PRECHAT_MODES = ("off", "optional", "required")
LANGUAGES = ("en", "es")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLOR = "#1f6feb"


def _conf(name):
    return settings.HELPDESK[name]


@dataclass(frozen=True)
class WidgetConfig:
    allowed_origins: tuple[str, ...]
    color: str
    greeting: str | dict
    position: str
    language: str
    prechat: dict
    require_verification: bool
    team_id: int | None
    email_channel_id: int | None

    def greeting_for(self, language: str) -> str:
        if isinstance(self.greeting, dict):
            text = self.greeting.get(language) or self.greeting.get(self.language) or ""
            if text:
                return str(text)
        elif self.greeting:
            return str(self.greeting)
        return gettext("Hi! How can we help you today?")

    @property
    def prechat_enabled(self) -> bool:
        return any(mode != "off" for mode in self.prechat.values())


def widget_config(channel) -> WidgetConfig:
    raw = channel.settings if isinstance(channel.settings, dict) else {}
    origins = raw.get("allowed_origins") or []
    if isinstance(origins, str):
        origins = [origins]
    prechat_raw = raw.get("prechat") if isinstance(raw.get("prechat"), dict) else {}
    prechat = {
        field: (prechat_raw.get(field) if prechat_raw.get(field) in PRECHAT_MODES else "off")
        for field in PRECHAT_FIELDS
    }
    color = str(raw.get("color") or "")
    language = str(raw.get("language") or "en")[:2].lower()

    def as_id(value):
        return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None

    return WidgetConfig(
        allowed_origins=tuple(origin_normalize(o) for o in origins if isinstance(o, str) and o.strip()),
        color=color if _COLOR.match(color) else DEFAULT_COLOR,
        greeting=raw.get("greeting") or "",
        position="left" if raw.get("position") == "left" else "right",
        language=language if language in LANGUAGES else "en",
        prechat=prechat,
        require_verification=bool(raw.get("require_verification")),
        team_id=as_id(raw.get("team")),
        email_channel_id=as_id(raw.get("email_channel")),
    )


def origin_normalize(value: str) -> str:
    """scheme://host[:port], lowercased, without a path or a default port."""
    value = (value or "").strip()
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return value.lower().rstrip("/")
    host = parts.hostname or ""
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc.lower()}"


def origin_allowed(config: WidgetConfig, origin: str | None) -> bool:
    """Whether a page of this origin may embed the chat. `https://*.shop.example` allows
    the subdomains of shop.example (not shop.example itself: list it too)."""
    if not origin:
        return False
    origin = origin_normalize(origin)
    for allowed in config.allowed_origins:
        if allowed == origin:
            return True
        if "://*." in allowed:
            scheme, suffix = allowed.split("://*.", 1)
            given_scheme, _, given_host = origin.partition("://")
            if given_scheme == scheme and given_host.endswith("." + suffix):
                return True
    return False


def origin_of_url(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    return origin_normalize(f"{parts.scheme}://{parts.netloc}")


def limits() -> dict:
    return {
        "max_message_chars": _conf("WEBCHAT_MAX_MESSAGE_CHARS"),
        "max_attachment_bytes": _conf("WEBCHAT_MAX_ATTACHMENT_BYTES"),
        "accepted_types": list(_conf("WEBCHAT_ATTACHMENT_TYPES")),
    }


def widget_settings_errors(raw) -> dict[str, str]:
    """What is wrong with settings an admin typed, in words (the admin form shows them)."""
    if not isinstance(raw, dict):
        return {"settings": gettext("Settings must be a JSON object.")}
    errors = {}
    origins = raw.get("allowed_origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        errors["allowed_origins"] = gettext('A list of origins, like ["https://shop.example.com"].')
    else:
        bad = [o for o in origins if not re.match(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d+)?/?$", o.strip())]
        if bad:
            errors["allowed_origins"] = gettext(
                "Not an origin (scheme://host[:port], no path): %(origins)s"
            ) % {"origins": ", ".join(bad)}
    if "color" in raw and not _COLOR.match(str(raw["color"] or "")):
        errors["color"] = gettext("A colour like #1f6feb.")
    if "position" in raw and raw["position"] not in ("left", "right"):
        errors["position"] = gettext('"left" or "right".')
    if "language" in raw and raw["language"] not in LANGUAGES:
        errors["language"] = gettext("One of: %(languages)s.") % {"languages": ", ".join(LANGUAGES)}
    prechat = raw.get("prechat", {})
    if not isinstance(prechat, dict) or any(
        k not in PRECHAT_FIELDS or v not in PRECHAT_MODES for k, v in prechat.items()
    ):
        errors["prechat"] = gettext('Fields name, email, phone, each "off", "optional" or "required".')
    if "require_verification" in raw and not isinstance(raw["require_verification"], bool):
        errors["require_verification"] = gettext("true or false.")
    greeting = raw.get("greeting", "")
    if not isinstance(greeting, str | dict):
        errors["greeting"] = gettext('A sentence, or {"es": "...", "en": "..."}.')
    return errors


def embed_snippet(channel) -> str:
    return f'<script src="{settings.PUBLIC_BASE_URL}/widget/{channel.key}.js" async></script>'
