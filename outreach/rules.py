"""What each step must respect before it sends: address, channel rules, quiet hours."""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils.translation import gettext as _

from channels_adapters.base import OutboundRefused
from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations.models import Direction, Message
from conversations.selectors import identity_reaching
from customers.models import Identity

# GSM 03.38 basic set plus its extension table (each extension character costs two).
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€")
WHATSAPP_KINDS = ("whatsapp", "whatsapp_twilio")


def consent_scope(channel_kind: str) -> str:
    """Consent is per way of reaching the person: both WhatsApp providers are one WhatsApp."""
    return "whatsapp" if channel_kind in WHATSAPP_KINDS else channel_kind


def sms_segments(text: str) -> int:
    """How many SMS the text is billed as: GSM-7 160/153 per part, else UCS-2 70/67."""
    if all(c in _GSM7 or c in _GSM7_EXT for c in text):
        units = sum(2 if c in _GSM7_EXT else 1 for c in text)
        return 1 if units <= 160 else math.ceil(units / 153)
    units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)
    return 1 if units <= 70 else math.ceil(units / 67)


def body_check(*, channel, body: str) -> str | None:
    """Why this text cannot go on this channel at all (checked when the outreach starts)."""
    if channel.kind == "sms":
        limit = settings.OUTREACH["SMS_MAX_SEGMENTS"]
        segments = sms_segments(body)
        if segments > limit:
            return _("The text is %(segments)s SMS long; %(channel)s allows %(limit)s at most.") % {
                "segments": segments,
                "channel": channel.name,
                "limit": limit,
            }
    return None


def recipient_for(*, customer_id: int, channel) -> Identity | None:
    """The customer's address on this channel: the one they last wrote from there, else any it reaches."""
    try:
        adapter = adapter_for(channel.kind)
    except UnsupportedChannel:
        return None
    latest = (
        Message.objects.filter(
            thread__customer_id=customer_id, channel=channel, direction=Direction.IN, identity__isnull=False
        )
        .select_related("identity")
        .order_by("-created_at", "-id")
        .first()
    )
    return identity_reaching(customer_id=customer_id, channel=channel, adapter=adapter, last_inbound=latest)


def outbound_meta(*, outreach, channel, thread, recipient) -> tuple[dict | None, str]:
    """The message meta the channel accepts now, or (None, why not).

    WhatsApp outside its 24-hour window takes only an approved template: the
    outreach's template for that channel kind is used then, and only then.
    """
    adapter = adapter_for(channel.kind)
    options = (outreach.options or {}).get(consent_scope(channel.kind)) or {}
    meta = {"outreach": outreach.pk}
    try:
        adapter.check_outbound(channel, thread=thread, recipient=recipient, meta={})
        return meta, ""
    except OutboundRefused as exc:
        template = options.get("template")
        if not template:
            return None, str(exc)
    meta["template"] = template
    try:
        adapter.check_outbound(channel, thread=thread, recipient=recipient, meta=meta)
    except OutboundRefused as exc:
        return None, str(exc)
    return meta, ""


def _parse_hours(spec: str) -> tuple[time, time] | None:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in spec.split("-"))
    except ValueError:
        return None
    return (start, end) if start != end else None


def customer_zone(*, customer, channel) -> ZoneInfo:
    candidates = [
        (customer.attributes or {}).get("timezone") if isinstance(customer.attributes, dict) else None,
        (channel.settings or {}).get("timezone") if isinstance(channel.settings, dict) else None,
        settings.TIME_ZONE,
    ]
    for name in candidates:
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_until(*, now: datetime, zone: ZoneInfo, spec: str | None = None) -> datetime | None:
    """When the quiet hours `now` falls in end (aware), or None when it is not quiet there."""
    hours = _parse_hours(spec if spec is not None else settings.OUTREACH["QUIET_HOURS"])
    if hours is None:
        return None
    start, end = hours
    local = now.astimezone(zone)
    clock = local.time()
    # Over midnight (21:00-09:00) the quiet part is both ends of the day.
    quiet = (start <= clock < end) if start < end else (clock >= start or clock < end)
    if not quiet:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    # Built as a wall-clock time in the zone: a daylight-saving change does not move it.
    return datetime.combine(day, end, tzinfo=zone)
