"""Writes of the REST API app: personal API tokens, and a case PATCH as one change.

Tokens: made, checked, revoked. Only a SHA-256 of the secret is kept.
A token is `hdk_` + 32 random bytes (URL-safe base64): with that much entropy a
plain SHA-256 is enough (no slow hash needed: nobody can guess the input), and
it lets a request find its token with one indexed look-up.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from api.models import ApiToken
from conversations import cases

TOKEN_PREFIX = "hdk_"
PREFIX_LENGTH = 12
# last_used_at is written at most this often per token: one write a minute, not one per request.
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass
class NewToken:
    token: ApiToken
    secret: str  # shown once to its owner, never stored


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(*, user, name: str) -> NewToken:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the token a name, e.g. the integration that uses it.")})
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise ValidationError({"name": _("A token's name has at most 100 characters.")})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, token_hash=token_hash(secret), prefix=secret[:PREFIX_LENGTH]
    )
    return NewToken(token=token, secret=secret)


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoked at once for every request that follows; the row stays for the record."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=token.revoked_at)
    return token


def api_token_authenticate(*, secret: str) -> ApiToken | None:
    """The live token for this secret (with its user), or None; notes when it was used."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=token_hash(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        # Conditional, so concurrent requests of one token write once between them.
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY), pk=token.pk
        ).update(last_used_at=now)
        token.last_used_at = now
    return token


# Cases ------------------------------------------------------------------------------

# `assignee=None` unassigns, so "not sent" needs a value of its own.
UNCHANGED = object()


def case_update(
    *,
    case,
    by,
    status: str | None = None,
    snoozed_until=None,
    assignee=UNCHANGED,
    team=None,
    priority: int | None = None,
    labels=None,
):
    """A PATCH of a case through the inbox's own services, all of it or nothing.

    Each change is the service the inbox calls (assignment, status, priority,
    labels), so the timeline events, pushes and rules are the same; the one
    transaction keeps a refused status from leaving the new assignee behind.
    """
    with transaction.atomic():
        if assignee is not UNCHANGED or team is not None:
            case = cases.assign_case(
                case=case,
                assignee=case.assignee if assignee is UNCHANGED else assignee,
                team=team,
                by=by,
            )
        if status is not None:
            case = cases.set_case_status(case=case, status=status, by=by, snoozed_until=snoozed_until)
        if priority is not None:
            case = cases.case_priority_set(case=case, priority=priority, by=by)
        if labels is not None:
            case = cases.case_labels_set(case=case, labels=labels, by=by)
    return case
