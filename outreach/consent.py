"""Per customer and channel kind: may we write first? Keywords, unsubscribe links, records."""

from __future__ import annotations

import re

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import Thread
from conversations.services import system_event_add
from outreach.models import Consent, ConsentStatus
from outreach.rules import consent_scope

_SALT = "outreach.unsubscribe"
_KEYWORD_CHANNELS = ("sms", "whatsapp")
_PUNCTUATION = re.compile(r"[\s.!¡?¿\"']+")

KIND_NAMES = {"sms": "SMS", "whatsapp": "WhatsApp", "email": "email"}


def keyword_meaning(text: str) -> str | None:
    """A message that is only an opt-out or opt-in keyword (as carriers read them): its status."""
    word = _PUNCTUATION.sub("", text or "").upper()
    if not word or len(word) > 20:
        return None
    conf = settings.OUTREACH
    if word in {k.upper() for k in conf["OPT_OUT_KEYWORDS"]}:
        return ConsentStatus.OPTED_OUT
    if word in {k.upper() for k in conf["OPT_IN_KEYWORDS"]}:
        return ConsentStatus.OPTED_IN
    return None


def consent_record(
    *, customer_id: int, channel_kind: str, status: str, source: str, evidence: str = ""
) -> Consent:
    """The customer said yes or no: recorded at once, and shown on their thread."""
    scope = consent_scope(channel_kind)
    with transaction.atomic():
        consent, created = Consent.objects.select_for_update().get_or_create(
            customer_id=customer_id,
            channel_kind=scope,
            defaults={
                "status": status,
                "source": source,
                "evidence": evidence[:200],
                "updated_at": timezone.now(),
            },
        )
        if not created and consent.status == status:
            return consent
        if not created:
            consent.status, consent.source, consent.evidence = status, source, evidence[:200]
            consent.updated_at = timezone.now()
            consent.save()
        thread = Thread.objects.filter(customer_id=customer_id).first()
        if thread is not None:
            name = KIND_NAMES.get(scope, scope)
            text = (
                _("The customer opted out of proactive messages on %(channel)s (%(evidence)s).")
                if status == ConsentStatus.OPTED_OUT
                else _("The customer opted in again to proactive messages on %(channel)s (%(evidence)s).")
            ) % {"channel": name, "evidence": evidence or source}
            system_event_add(thread=thread, case=None, text=text)
    return consent


def opted_out(*, customer_id: int, channel_kind: str) -> bool:
    return Consent.objects.filter(
        customer_id=customer_id, channel_kind=consent_scope(channel_kind), status=ConsentStatus.OPTED_OUT
    ).exists()


def consent_from_message(message) -> Consent | None:
    """An inbound SMS or WhatsApp that is only STOP / BAJA / START...: the customer's consent."""
    channel = message.channel
    if channel is None or consent_scope(channel.kind) not in _KEYWORD_CHANNELS:
        return None
    status = keyword_meaning(message.body)
    if status is None:
        return None
    customer_id = Thread.objects.filter(pk=message.thread_id).values_list("customer_id", flat=True).first()
    if customer_id is None:
        return None
    return consent_record(
        customer_id=customer_id,
        channel_kind=channel.kind,
        status=status,
        source=Consent.Source.KEYWORD,
        evidence=message.body.strip()[:200],
    )


def unsubscribe_token(*, customer_id: int, channel_kind: str = "email") -> str:
    return signing.dumps({"c": customer_id, "k": channel_kind}, salt=_SALT, compress=True)


def unsubscribe_read(token: str) -> tuple[int, str] | None:
    """(customer id, channel kind) from a link we signed; None for anything else. Links do not expire:
    a customer may unsubscribe from a mail of last year."""
    try:
        data = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int) or not isinstance(data.get("k"), str):
        return None
    return data["c"], data["k"]


def unsubscribe_url(*, customer_id: int, channel_kind: str = "email") -> str:
    path = reverse(
        "outreach:unsubscribe",
        kwargs={"token": unsubscribe_token(customer_id=customer_id, channel_kind=channel_kind)},
    )
    return settings.PUBLIC_BASE_URL + path
