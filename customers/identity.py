"""Normalizing addresses so one person is one identity whatever the channel."""

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from customers.models import IdentityKind


def phone_normalize(raw: str, *, region: str | None = None) -> str:
    """E.164 for any way a provider writes a number ('whatsapp:+1…', '1 555…')."""
    value = (raw or "").strip()
    for prefix in ("whatsapp:", "tel:", "sms:"):
        if value.lower().startswith(prefix):
            value = value[len(prefix) :]
    if value and value[0].isdigit() and len(value) > 10:
        # WhatsApp's wa_id and many APIs give the number with its country code
        # but without '+'.
        value = "+" + value
    try:
        number = phonenumbers.parse(value, region or settings.HELPDESK["DEFAULT_PHONE_REGION"])
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(f"'{raw}' is not a phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(number):
        raise ValidationError(f"'{raw}' is not a possible phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_normalize(raw: str) -> str:
    value = (raw or "").strip().lower()
    local, _, domain = value.rpartition("@")
    if not local or not domain or " " in value:
        raise ValidationError(f"'{raw}' is not an email address.")
    return value


# Two-letter country, a dot, up to 128 alphanumerics; parent ids add "ENT." (US.ENT.1181...).
_BSUID = re.compile(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}")


def whatsapp_bsuid_normalize(raw: str) -> str:
    """Kept exactly as Meta gave it (Meta asks to send it back unchanged), only checked."""
    value = str(raw or "").strip()
    if not _BSUID.fullmatch(value):
        raise ValidationError(
            _("'%(raw)s' is not a WhatsApp business-scoped user id (like US.13491208655302741918).")
            % {"raw": raw}
        )
    return value


def identity_normalize(kind: str, address: str) -> str:
    if kind not in IdentityKind.values:
        raise ValidationError(f"Unknown identity kind '{kind}'.")
    if kind == IdentityKind.EMAIL:
        return email_normalize(address)
    if kind == IdentityKind.PHONE:
        return phone_normalize(address)
    if kind == IdentityKind.WHATSAPP_BSUID:
        return whatsapp_bsuid_normalize(address)
    value = str(address or "").strip()
    if not value:
        raise ValidationError(f"An empty {kind} address is not an identity.")
    return value
