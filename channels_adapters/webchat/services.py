"""Writes of the visitor side: sessions, pre-chat details, messages, typing, reads.

A visitor's message goes through the same `receive_inbound` as every channel's
(identity, thread, case, pushes to agents, surveys, KPIs): the only thing that
differs is that it arrives from our own frame, so it is checked here (origin,
token, limits) instead of by a provider signature, and it is committed before
the visitor is told it was sent.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_adapters.base import Sender, text_clean
from channels_adapters.webchat import limits as rate
from channels_adapters.webchat.config import LANGUAGES, WidgetConfig, limits, origin_allowed, widget_config
from channels_adapters.webchat.presence import presence_touch
from channels_adapters.webchat.selectors import visitor_case, visitor_identity
from channels_adapters.webchat.tokens import (
    IDENTIFIER_MAX,
    TokenInvalid,
    Visitor,
    identity_hash_valid,
    token_read,
    visitor_new,
    visitor_verified,
)
from conversations import realtime, signals
from conversations.attachments import attachment_save
from conversations.models import DeliveryStatus, Direction, Message, MessageKind
from customers.identity import email_normalize, phone_normalize
from customers.models import Identity, IdentityKind
from customers.services import identity_resolve, merge_customers

logger = logging.getLogger(__name__)

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# What a file must start with to be shown as the image it claims to be.
_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


class WidgetRefused(Exception):
    """A visitor request we refuse; `status` and `code` go to the widget, `message` is for the visitor."""

    def __init__(
        self, message: str, *, code: str, status: int = 400, fields: dict | None = None, retry_after=None
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.fields = fields or {}
        self.retry_after = retry_after


@dataclass
class Session:
    visitor: Visitor
    identity: Identity | None
    config: WidgetConfig


def _refuse_origin() -> WidgetRefused:
    return WidgetRefused(
        _("This website is not allowed to use this chat."), code="origin_not_allowed", status=403
    )


def _refuse_unverified() -> WidgetRefused:
    return WidgetRefused(
        _("Please sign in on the website to chat with us."), code="verification_required", status=403
    )


def _visitor_from_token(channel, token: str) -> Visitor:
    try:
        return token_read(token, channel_key=channel.key)
    except TokenInvalid as exc:
        raise WidgetRefused(
            _("Your chat session is not valid. Please reload the page."), code="invalid_token", status=401
        ) from exc


def _rate(action: str, *, visitor: Visitor | None, ip: str) -> None:
    try:
        rate.rate_check(action=action, visitor_address=visitor.address if visitor else None, ip=ip)
    except rate.RateLimited as exc:
        raise WidgetRefused(
            _("You are sending too fast. Please wait %(seconds)s seconds and try again.")
            % {"seconds": exc.retry_after},
            code="rate_limited",
            status=429,
            retry_after=exc.retry_after,
        ) from exc


def visitor_language(channel, token: str, asked: str = "") -> str:
    """The language the server answers a visitor in: the one their session started with
    (kept in the token), else what the frame asks, else the channel's default."""
    try:
        language = token_read(token, channel_key=channel.key).language if token else ""
    except TokenInvalid:
        language = ""
    language = language or (asked or "")[:2].lower()
    return language if language in LANGUAGES else widget_config(channel).language


def visitor_authenticate(*, channel, token: str) -> Session:
    """The visitor a bearer token names, if the token is ours, of this channel, and its site still allowed."""
    visitor = _visitor_from_token(channel, token)
    config = widget_config(channel)
    if not origin_allowed(config, visitor.origin):
        raise _refuse_origin()
    if config.require_verification and not visitor.verified:
        raise _refuse_unverified()
    return Session(visitor=visitor, identity=visitor_identity(visitor=visitor), config=config)


def visitor_session_start(
    *,
    channel,
    token: str | None,
    origin: str,
    user: dict | None = None,
    user_hash: str | None = None,
    page: dict | None = None,
    ip: str = "",
) -> Session:
    """Start or resume a visitor's chat from the frame.

    A token of ours is resumed; a tampered or expired one is refused (the frame
    drops it and starts afresh). A host-site user with a valid hash becomes a
    verified visitor: the same identity on every device, so their history follows.
    """
    config = widget_config(channel)
    if not origin_allowed(config, origin):
        raise _refuse_origin()
    _rate("session", visitor=None, ip=ip)
    visitor = None
    if token:
        visitor = replace(_visitor_from_token(channel, token), origin=origin)
    user = user if isinstance(user, dict) else {}
    identifier = str(user.get("identifier") or user.get("id") or "").strip()
    if user_hash or identifier:
        if (
            not identifier
            or len(identifier) > IDENTIFIER_MAX
            or not identity_hash_valid(
                secret=str(channel.credentials.get("identity_secret") or ""),
                identifier=identifier,
                given=user_hash or "",
            )
        ):
            raise WidgetRefused(
                _("We could not verify who you are. Please sign in again on the website."),
                code="identity_unverified",
                status=403,
            )
        previous = visitor
        visitor = visitor_verified(channel_key=channel.key, identifier=identifier, origin=origin)
        if previous is not None and not previous.verified:
            _anonymous_session_adopt(anonymous=previous, verified=visitor, name=str(user.get("name") or ""))
    if visitor is None:
        visitor = visitor_new(channel_key=channel.key, origin=origin)
    if config.require_verification and not visitor.verified:
        raise _refuse_unverified()
    identity = visitor_identity(visitor=visitor)
    if visitor.verified and any(user.get(k) for k in ("email", "phone", "name")):
        # The host site vouches for its user's profile: link it as the pre-chat form would.
        identity = _details_apply(
            visitor=visitor,
            identity=identity,
            name=str(user.get("name") or "")[:200],
            email=_email_or_none(user.get("email")),
            phone=_phone_or_none(user.get("phone")),
        )
    presence_touch(address=visitor.address, page=page)
    return Session(visitor=visitor, identity=identity, config=config)


def _email_or_none(value) -> str | None:
    try:
        return email_normalize(str(value)) if value else None
    except ValidationError:
        return None


def _phone_or_none(value) -> str | None:
    try:
        return phone_normalize(str(value)) if value else None
    except ValidationError:
        return None


def _anonymous_session_adopt(*, anonymous: Visitor, verified: Visitor, name: str) -> None:
    """A visitor who chatted anonymously signs in: their chat joins their verified record.

    Only a record that is the anonymous session's alone is folded in; one a
    pre-chat email linked to somebody's customer stays where it is (signing in
    must never pull another person's history into this user's).
    """
    old = visitor_identity(visitor=anonymous)
    if old is None:
        return
    with transaction.atomic():
        new = identity_resolve(kind=IdentityKind.WEBCHAT, address=verified.address, name=name)
        if new.customer_id == old.customer_id:
            return
        if Identity.objects.filter(customer_id=old.customer_id).count() != 1:
            return
        try:
            merge_customers(survivor=new.customer, merged=old.customer)
        except ValidationError as exc:
            logger.info("Web chat sign-in left session %s apart: %s", old.pk, exc)


def visitor_details_submit(
    *, session: Session, name: str = "", email: str = "", phone: str = "", ip: str = ""
) -> Session:
    """The pre-chat form: check it against the channel's rules, then link what it names."""
    _rate("prechat", visitor=session.visitor, ip=ip)
    given = {"name": (name or "").strip(), "email": (email or "").strip(), "phone": (phone or "").strip()}
    errors, clean = {}, {}
    for field, mode in session.config.prechat.items():
        value = given[field]
        if mode == "off":
            continue
        if not value:
            if mode == "required":
                errors[field] = _("This field is required.")
            continue
        if field == "email":
            clean[field] = _email_or_none(value)
            if clean[field] is None:
                errors[field] = _("Enter a valid email address.")
        elif field == "phone":
            clean[field] = _phone_or_none(value)
            if clean[field] is None:
                errors[field] = _("Enter a valid phone number, with its country code.")
        else:
            clean[field] = text_clean(value)[:200]
    if errors:
        raise WidgetRefused(_("Please check the form."), code="invalid", fields=errors)
    identity = _details_apply(
        visitor=session.visitor,
        identity=session.identity,
        name=clean.get("name", ""),
        email=clean.get("email"),
        phone=clean.get("phone"),
        create=True,
    )
    return Session(visitor=session.visitor, identity=identity, config=session.config)


def _details_apply(
    *, visitor: Visitor, identity, name: str, email: str | None, phone: str | None, create: bool = True
):
    """Link the visitor to whoever already has this email or phone, so agents see one thread.

    The visitor gains no sight of that customer's history by it: what a visitor
    reads is only their own web-chat identity's messages (selectors.visitor_messages).
    """
    if identity is None and not create:
        return None
    with transaction.atomic():
        identity = identity or identity_resolve(kind=IdentityKind.WEBCHAT, address=visitor.address, name=name)
        customer = identity.customer
        if name and not customer.name:
            customer.name = name
            customer.save(update_fields=["name"])
        for kind, address in ((IdentityKind.EMAIL, email), (IdentityKind.PHONE, phone)):
            if address:
                customer = _link(customer=customer, visitor_identity=identity, kind=kind, address=address)
        identity.customer = customer
    return identity


def _link(*, customer, visitor_identity: Identity, kind: str, address: str):
    existing = Identity.objects.select_related("customer").filter(kind=kind, address=address).first()
    if existing is None:
        try:
            with transaction.atomic():
                Identity.objects.create(customer=customer, kind=kind, address=address)
        except IntegrityError:
            pass  # given at the same moment by another session: that one links it
        return customer
    if existing.customer_id == customer.pk:
        return customer
    # The visitor's own record is fresh (this web-chat identity only): it becomes
    # part of the customer who has that address. A record with more of its own
    # (another address, a verified user) is two people's claim: left for an agent.
    if Identity.objects.filter(customer_id=customer.pk).count() != 1:
        return customer
    try:
        merge_customers(survivor=existing.customer, merged=customer)
    except ValidationError as exc:
        logger.info(
            "Web chat visitor %s not linked to customer %s: %s",
            visitor_identity.pk,
            existing.customer_id,
            exc,
        )
        return customer
    return existing.customer


def _external_id(visitor: Visitor, client_id: str) -> str:
    return hashlib.sha256(visitor.address.encode()).hexdigest()[:24] + ":" + client_id


def _check_file(upload, conf: dict) -> tuple[bytes, str]:
    if upload.size > conf["max_attachment_bytes"]:
        raise WidgetRefused(
            _("That file is too large (the limit is %(mb)s MB).")
            % {"mb": round(conf["max_attachment_bytes"] / 1048576, 1)},
            code="too_large",
            status=413,
        )
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if content_type not in conf["accepted_types"]:
        raise WidgetRefused(_("Files of this type cannot be sent here."), code="type_not_allowed", status=415)
    content = upload.read()
    magic = _IMAGE_MAGIC.get(content_type)
    if magic and not content.startswith(magic):
        raise WidgetRefused(
            _("This file is not the image it claims to be."), code="type_not_allowed", status=415
        )
    return content, content_type


def visitor_message_send(
    *,
    session: Session,
    channel,
    client_id: str = "",
    text: str = "",
    upload=None,
    page: dict | None = None,
    user_agent: str = "",
    time_zone: str = "",
    ip: str = "",
) -> tuple[Message, bool]:
    """The visitor writes. Committed before we answer; the same client_id again is the same message."""
    visitor, config = session.visitor, session.config
    conf = limits()
    text = text_clean(str(text or "")).strip()
    if len(text) > conf["max_message_chars"]:
        raise WidgetRefused(
            _("Your message is too long (at most %(max)s characters).") % {"max": conf["max_message_chars"]},
            code="too_long",
            status=400,
        )
    if not text and upload is None:
        raise WidgetRefused(_("Write a message or attach a file."), code="empty", status=400)
    client_id = str(client_id or "")
    if client_id and not _CLIENT_ID.match(client_id):
        raise WidgetRefused(
            _("Your chat sent something we cannot read. Please reload the page."), code="invalid"
        )
    external_id = _external_id(visitor, client_id or timezone.now().strftime("t%Y%m%d%H%M%S%f"))
    identity = session.identity
    if identity is not None and client_id:
        existing = Message.objects.filter(channel=channel, external_id=external_id).first()
        if existing is not None:
            return existing, False
    if config.prechat_enabled and identity is None and any(m == "required" for m in config.prechat.values()):
        raise WidgetRefused(_("Please tell us who you are first."), code="prechat_required", status=400)
    _rate("message", visitor=visitor, ip=ip)
    attachments = []
    if upload is not None:
        content, content_type = _check_file(upload, conf)
        attachments.append(
            attachment_save(content=content, name=upload.name or "", content_type=content_type)
        )
    from conversations.services import receive_inbound

    meta = {
        "webchat": {
            "client_id": client_id,
            "origin": visitor.origin,
            "verified": visitor.verified,
            "page": {k: str(v)[:500] for k, v in (page or {}).items() if k in ("url", "title") and v},
            "user_agent": text_clean(user_agent)[:300],
            "time_zone": text_clean(str(time_zone or ""))[:64],
        }
    }
    result = receive_inbound(
        channel=channel,
        sender=Sender(IdentityKind.WEBCHAT, visitor.address, ""),
        external_id=external_id,
        text=text,
        kind=MessageKind.TEXT if text else MessageKind.MEDIA,
        attachments=attachments,
        meta=meta,
    )
    presence_touch(address=visitor.address, page=page)
    return result.message, result.created


def visitor_typing(*, session: Session, channel, typing: bool) -> None:
    """Tell the agents of the visitor's case that they are typing (nothing stored)."""
    case = visitor_case(channel=channel, identity=session.identity)
    if case is None or case.status == "resolved":
        return
    realtime.publish(
        "visitor.typing",
        {"case": case.pk, "thread": case.thread_id, "typing": bool(typing)},
        case_id=case.pk,
    )


def visitor_read(*, session: Session, channel, up_to: int) -> int:
    """The visitor has seen our messages up to `up_to`: they are read."""
    if session.identity is None:
        return 0
    now = timezone.now()
    with transaction.atomic():
        mine = Message.objects.filter(
            channel=channel,
            identity=session.identity,
            direction=Direction.OUT,
            pk__lte=up_to,
            status__in=(DeliveryStatus.SENT, DeliveryStatus.DELIVERED),
        )
        ids = list(mine.order_by("-pk").values_list("pk", flat=True)[:50])
        if not ids:
            return 0
        Message.objects.filter(pk__in=ids).update(status=DeliveryStatus.READ, read_at=now)
        read = list(Message.objects.filter(pk__in=ids).select_related("channel", "identity"))
        for message in read:
            signals.message_event_emit("message.status_changed", message)
        transaction.on_commit(lambda: [realtime.publish_message_updated(m) for m in read])
    return len(ids)
