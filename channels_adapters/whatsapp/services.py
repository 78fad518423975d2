"""Writes of the WhatsApp channel: a user's phone number and business-scoped id are one person."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from customers.identity import identity_normalize
from customers.models import Identity, IdentityKind
from customers.services import identity_add, identity_resolve

logger = logging.getLogger(__name__)


def whatsapp_bsuid_link(*, phone: str, bsuid: str, name: str = "") -> int | None:
    """Meta sent both the phone number and the BSUID of a user: keep both on one customer.

    The phone stays the identity messages are recorded on (WhatsApp, SMS and calls
    share it); the BSUID joins the same customer so that the day the user hides
    their number behind a username, their messages still land on their thread.
    If only the BSUID was known (they wrote as a username first), the phone joins
    that customer instead. A known identity never moves: returns the id of the
    other customer when the two already belong to different people (an agent
    merges them), else None."""
    try:
        phone = identity_normalize(IdentityKind.PHONE, phone)
        bsuid = identity_normalize(IdentityKind.WHATSAPP_BSUID, bsuid)
    except ValidationError:
        return None  # the message item itself reports the bad number
    known = {
        i.kind: i
        for i in Identity.objects.filter(kind=IdentityKind.PHONE, address=phone)
        | Identity.objects.filter(kind=IdentityKind.WHATSAPP_BSUID, address=bsuid)
    }
    by_phone, by_bsuid = known.get(IdentityKind.PHONE), known.get(IdentityKind.WHATSAPP_BSUID)
    if by_phone is not None and by_bsuid is not None:
        return by_bsuid.customer_id if by_bsuid.customer_id != by_phone.customer_id else None
    try:
        with transaction.atomic():
            if by_bsuid is not None:
                identity_add(customer=by_bsuid.customer, kind=IdentityKind.PHONE, address=phone)
            else:
                owner = by_phone or identity_resolve(kind=IdentityKind.PHONE, address=phone, name=name)
                identity_add(customer=owner.customer, kind=IdentityKind.WHATSAPP_BSUID, address=bsuid)
    except (IntegrityError, ValidationError):
        # Another worker linked them a moment ago (or gave one to someone else): theirs stands.
        logger.info("WhatsApp phone/BSUID link raced for %s", bsuid)
    return None
