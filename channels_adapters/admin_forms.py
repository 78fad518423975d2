"""The channel's form in Django admin: one field per credential key of its kind (DESIGN.md).

Secrets are password inputs that never show the stored value: left blank, the
stored value is kept. Every kind's fields are on the form; the admin's script
shows only the selected kind's (channels_adapters/channel_admin.js).
"""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from channels_adapters.models import Channel
from channels_adapters.registry import ADAPTERS

_SECRET_WORDS = ("secret", "token", "password", "key", "auth")
FIELD_PREFIX = "credential_"

LABELS = {
    "secret": gettext_lazy("Shared secret"),
    "callback_url": gettext_lazy("Callback URL"),
    "page_id": gettext_lazy("Page ID"),
    "page_access_token": gettext_lazy("Page access token"),
    "app_secret": gettext_lazy("App secret"),
    "verify_token": gettext_lazy("Verify token"),
    "ig_account_id": gettext_lazy("Instagram account ID"),
    "access_token": gettext_lazy("Access token"),
    "phone_number_id": gettext_lazy("Phone number ID"),
    "consumer_key": gettext_lazy("Consumer key (API key)"),
    "consumer_secret": gettext_lazy("Consumer secret (API secret)"),
    "access_token_secret": gettext_lazy("Access token secret"),
    "user_id": gettext_lazy("User ID of the account"),
    "account_sid": gettext_lazy("Account SID"),
    "auth_token": gettext_lazy("Auth token"),
    "phone_number": gettext_lazy("Phone number"),
    "bot_token": gettext_lazy("Bot token"),
    "secret_token": gettext_lazy("Webhook secret token"),
    "address": gettext_lazy("Email address"),
    "imap_host": gettext_lazy("IMAP server"),
    "imap_port": gettext_lazy("IMAP port"),
    "imap_user": gettext_lazy("IMAP user"),
    "imap_password": gettext_lazy("IMAP password"),
    "imap_folder": gettext_lazy("IMAP folder"),
    "smtp_host": gettext_lazy("SMTP server"),
    "smtp_port": gettext_lazy("SMTP port"),
    "smtp_user": gettext_lazy("SMTP user"),
    "smtp_password": gettext_lazy("SMTP password"),
    "signing_key": gettext_lazy("Relay signing key"),
    "identity_secret": gettext_lazy("Identity verification secret"),
}
HELP = {
    "identity_secret": gettext_lazy("Left empty on a new website chat, one is made for it."),
    "phone_number": gettext_lazy("In international format, e.g. +34 600 000 000."),
    "signing_key": gettext_lazy("Only for mail relayed by Mailgun or a similar service."),
    "imap_folder": gettext_lazy("Usually INBOX."),
}


def is_secret_key(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def kinds_by_key() -> dict[str, list[str]]:
    """Every credential key of every kind, with the kinds that use it, in the kinds' order."""
    keys: dict[str, list[str]] = {}
    for kind, adapter in ADAPTERS.items():
        for key in adapter.credential_keys:
            keys.setdefault(key, []).append(kind)
    return keys


def _validate(key: str, value: str) -> str:
    """The value as stored, or ValidationError in words an admin can act on."""
    if key.endswith("_port"):
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ValidationError(_("A port is a number from 1 to 65535."))
        return value
    if key == "address":
        validate_email(value)
        return value.lower()
    if key == "callback_url":
        URLValidator(schemes=["http", "https"])(value)
        return value
    if key == "phone_number":
        from customers.identity import phone_normalize

        try:
            return phone_normalize(value)
        except ValidationError as exc:
            raise ValidationError(_("Not a phone number; write it like +34 600 000 000.")) from exc
    if key.endswith("_host") and (" " in value or "://" in value):
        raise ValidationError(_("Only the server's name, e.g. imap.example.com (no “https://”)."))
    if key in ("page_id", "ig_account_id", "phone_number_id", "user_id") and not value.isdigit():
        raise ValidationError(_("This ID is a number (digits only)."))
    if key == "account_sid" and not re.fullmatch(r"AC[0-9a-fA-F]{32}", value):
        raise ValidationError(_("A Twilio account SID starts with AC and has 34 characters."))
    if key == "bot_token" and not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", value):
        raise ValidationError(_("A bot token looks like 123456789:AAE…, as @BotFather gives it."))
    if key == "secret_token" and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
        raise ValidationError(_("1 to 256 letters, digits, “_” or “-” (Telegram's rule)."))
    return value


class _ChannelForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = ["kind", "name", "is_active", "monthly_cost", "settings"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.stored_credentials()
        for key, kinds in kinds_by_key().items():
            field = self.fields[FIELD_PREFIX + key]
            field.widget.attrs["data-channel-kinds"] = " ".join(kinds)
            if is_secret_key(key):
                if stored.get(key):
                    field.help_text = _("A value is stored; leave blank to keep it.")
            elif key in stored:
                self.initial[FIELD_PREFIX + key] = stored[key]

    def stored_credentials(self) -> dict:
        return dict(self.instance.credentials or {}) if self.instance.pk else {}

    def clean(self):
        cleaned = super().clean()
        adapter = ADAPTERS.get(cleaned.get("kind"))
        if adapter is None:
            return cleaned
        if isinstance(cleaned.get("settings"), dict):
            errors = adapter.settings_errors(cleaned["settings"])
            if errors:
                self.add_error("settings", [f"{key}: {sentence}" for key, sentence in errors.items()])
        stored = self.stored_credentials()
        known = kinds_by_key()
        # Keys no kind names (an email channel's smtp_security...) stay as they are.
        credentials = {k: v for k, v in stored.items() if k not in known}
        for key in adapter.credential_keys:
            value = (cleaned.get(FIELD_PREFIX + key) or "").strip()
            if not value and is_secret_key(key):
                value = str(stored.get(key) or "")  # blank keeps the stored secret
            if value:
                try:
                    value = _validate(key, value)
                except ValidationError as exc:
                    self.add_error(FIELD_PREFIX + key, exc)
                    continue
            credentials[key] = value
        credentials = adapter.credentials_complete(credentials)
        missing = [key for key in adapter.credential_keys if not credentials.get(key)]
        if missing and cleaned.get("is_active"):
            self.add_error(
                None,
                _("An active channel needs: %(keys)s.")
                % {"keys": ", ".join(str(LABELS.get(k, k)) for k in missing)},
            )
            for key in missing:
                if FIELD_PREFIX + key not in self.errors:
                    self.add_error(FIELD_PREFIX + key, _("Required for an active channel."))
        self.credentials = credentials
        return cleaned

    def save(self, commit=True):
        self.instance.credentials = self.credentials
        return super().save(commit)


def _credential_field(key: str) -> forms.CharField:
    if is_secret_key(key):
        widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    else:
        widget = forms.TextInput(attrs={"autocomplete": "off"})
    return forms.CharField(
        label=LABELS.get(key, key.replace("_", " ")),
        required=False,
        widget=widget,
        help_text=HELP.get(key, ""),
        max_length=4000,
    )


# Declared on the class (not added per instance) so Django admin knows every field.
ChannelForm = type(
    "ChannelForm",
    (_ChannelForm,),
    {"__module__": __name__, **{FIELD_PREFIX + key: _credential_field(key) for key in kinds_by_key()}},
)
CREDENTIAL_FIELDS = [FIELD_PREFIX + key for key in kinds_by_key()]
