"""Template helpers of the agent inbox: safe rendering of what customers send."""

from datetime import datetime
from urllib.parse import urlsplit

import nh3
from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

# kind -> (short badge text, accessible name)
CHANNEL_BADGES = {
    "api": ("API", "API"),
    "email": ("✉", "Email"),
    "facebook": ("FB", "Facebook Messenger"),
    "instagram": ("IG", "Instagram"),
    "whatsapp": ("WA", "WhatsApp"),
    "whatsapp_twilio": ("WA", "WhatsApp"),
    "twitter": ("X", "X / Twitter"),
    "sms": ("SMS", "SMS"),
    "voice": ("☎", "Phone"),
    "phone": ("☎", "Phone number"),
    "telegram": ("TG", "Telegram"),
    "webchat": ("💬", "Website chat"),
}

STATUS_MARKS = {
    "queued": ("🕓", "Queued"),
    "sent": ("✓", "Sent"),
    "delivered": ("✓✓", "Delivered"),
    "read": ("✓✓", "Read"),
    "failed": ("⚠", "Failed"),
}


@register.simple_tag
def channel_badge(kind):
    if not kind:
        return format_html('<span class="badge ch-none" title="{0}" aria-label="{0}">•</span>', "Internal")
    text, name = CHANNEL_BADGES.get(kind, (kind[:3].upper(), kind))
    return format_html(
        '<span class="badge ch-{}" title="{}" role="img" aria-label="{}">{}</span>', kind, name, name, text
    )


@register.simple_tag
def delivery_status(status):
    if not status:
        return ""
    mark, label = STATUS_MARKS.get(status, ("", status))
    return format_html(
        '<span class="dstatus ds-{}" data-status="{}">{} {}</span>', status, status, mark, label
    )


@register.filter
def clean_html(value):
    """Email HTML through nh3 at render time too: even a row written by an older
    version or by hand can never run script in an agent's browser."""
    if not value:
        return ""
    return mark_safe(nh3.clean(value, link_rel="noopener noreferrer nofollow"))  # noqa: S308


@register.filter
def safe_url(value):
    """Only web and relative links: a `javascript:` URL from a payload is dropped."""
    value = (value or "").strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme.lower() in ("http", "https"):
        return value
    if parts.scheme or parts.netloc:
        return ""
    # Storage URLs may be relative to the site root ("media/...").
    return value if value.startswith("/") else "/" + value


@register.filter
def duration(seconds):
    try:
        seconds = int(seconds)
    except (TypeError, ValueError):
        return ""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@register.filter
def waited(since: datetime | None):
    """Short waiting time ('3 min', '2 h 5 min', '4 d'); JS keeps it current."""
    if not since:
        return ""
    seconds = max(0, int((timezone.now() - since).total_seconds()))
    if seconds < 60:
        return "<1 min"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


@register.filter
def attachment_kind(attachment):
    content_type = (attachment or {}).get("content_type", "") if isinstance(attachment, dict) else ""
    for prefix in ("image", "audio", "video"):
        if content_type.startswith(prefix + "/"):
            return prefix
    return "file"


@register.filter
def person(user):
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()
