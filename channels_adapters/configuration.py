"""Channel configuration writes outside Django admin (the REST API): the admin form's rules.

The same checks as channels_adapters/admin.py's ChannelForm: the adapter judges
the settings, fills in what it makes itself (a web chat's secret), and an active
channel needs every credentials key of its kind.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from channels_adapters.models import Channel, ChannelKind
from channels_adapters.registry import ADAPTERS


def _checked(*, kind: str, settings: dict, credentials: dict, is_active: bool) -> dict:
    adapter = ADAPTERS.get(kind)
    if adapter is None:
        raise ValidationError({"kind": _("Unknown channel kind '%(kind)s'.") % {"kind": kind}})
    errors = {}
    settings_errors = adapter.settings_errors(settings)
    if settings_errors:
        errors["settings"] = [f"{key}: {sentence}" for key, sentence in settings_errors.items()]
    credentials = adapter.credentials_complete(credentials)
    missing = [k for k in adapter.credential_keys if not credentials.get(k)]
    if missing and is_active:
        errors["credentials"] = [_("An active channel needs: %(keys)s.") % {"keys": ", ".join(missing)}]
    if errors:
        raise ValidationError(errors)
    return credentials


def channel_create(
    *,
    kind: str,
    name: str,
    credentials: dict | None = None,
    settings: dict | None = None,
    is_active: bool = True,
    monthly_cost: Decimal | int = 0,
) -> Channel:
    if kind not in ChannelKind.values:
        raise ValidationError({"kind": _("Unknown channel kind '%(kind)s'.") % {"kind": kind}})
    settings = settings or {}
    credentials = _checked(kind=kind, settings=settings, credentials=credentials or {}, is_active=is_active)
    return Channel.objects.create(
        kind=kind,
        name=name,
        credentials=credentials,
        settings=settings,
        is_active=is_active,
        monthly_cost=monthly_cost,
    )


def channel_update(
    *,
    channel: Channel,
    name: str | None = None,
    credentials: dict | None = None,
    settings: dict | None = None,
    is_active: bool | None = None,
    monthly_cost: Decimal | None = None,
) -> Channel:
    """Change what is given. `credentials` are merged into the stored ones (a key set to
    null is removed), so a caller never has to know, or resend, the secrets it keeps."""
    with transaction.atomic():
        channel = Channel.objects.select_for_update().get(pk=channel.pk)
        stored = dict(channel.credentials or {})
        if credentials is not None:
            for key, value in credentials.items():
                if value is None:
                    stored.pop(key, None)
                else:
                    stored[key] = value
        if name is not None:
            channel.name = name
        if settings is not None:
            channel.settings = settings
        if is_active is not None:
            channel.is_active = is_active
        if monthly_cost is not None:
            channel.monthly_cost = monthly_cost
        channel.credentials = _checked(
            kind=channel.kind,
            settings=channel.settings or {},
            credentials=stored,
            is_active=channel.is_active,
        )
        channel.save()
    return channel
