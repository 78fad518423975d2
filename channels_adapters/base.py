"""The contract every channel adapter fulfils.

An adapter turns one provider's webhook into normalized items and sends our
messages with the provider's client. Everything else (storing the event,
identity resolution, threads, cases, retries, real-time pushes) is shared and
lives in services, so adding a channel touches one folder and one registry line.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.text import Truncator
from django.utils.translation import gettext

if TYPE_CHECKING:
    from channels_adapters.models import Channel, InboundEvent
    from conversations.models import Message, Thread
    from customers.models import Identity


class SignatureError(Exception):
    """The request is not from the provider: refuse it, store nothing."""


class ParseError(Exception):
    """A signed request we cannot read: keep it, mark it failed, tell an admin."""


class SendError(Exception):
    """A send that did not go through; `reason` is written for the agent."""

    def __init__(self, reason: str, *, code: str = "", retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.retry_after = retry_after


class TransientSendError(SendError):
    """Worth retrying with backoff (timeouts, 5xx, rate limits)."""


class PermanentSendError(SendError):
    """Retrying cannot help (bad token, unknown recipient, refused content)."""


class OutboundRefused(Exception):
    """A channel rule forbids this send before we try (e.g. a closed 24-hour window)."""


@dataclass(frozen=True)
class Sender:
    kind: str  # an IdentityKind
    address: str
    name: str = ""


@dataclass
class InboundMessage:
    external_id: str
    sender: Sender
    text: str = ""
    kind: str = "text"
    html: str = ""
    attachments: list[dict] = field(default_factory=list)
    timestamp: datetime | None = None
    meta: dict = field(default_factory=dict)
    # Our own side's message seen through the provider (an echo): recorded as
    # outbound, never as the customer's.
    echo: bool = False


@dataclass
class StatusUpdate:
    """A delivery receipt for one of our messages.

    With `watermark` (Messenger) the receipt covers every outbound message to
    `recipient` on this channel sent up to that time, and `external_id` may be
    empty.
    """

    external_id: str
    status: str  # a DeliveryStatus value
    error: str = ""
    timestamp: datetime | None = None
    watermark: datetime | None = None
    recipient: Sender | None = None
    # Our message id, where the provider echoes a reference we sent with the
    # message: it settles a send whose answer a crash lost (no external id yet).
    message_id: int | None = None


@dataclass
class MessageUpdate:
    """Later news about a message we already have (an edit, a call's outcome, a
    recording, a transcript). `meta` is merged in; a new `text` replaces the body
    and the previous text is kept in meta["edits"]."""

    external_id: str
    text: str | None = None
    kind: str | None = None
    meta: dict = field(default_factory=dict)
    attachments: list[dict] = field(default_factory=list)
    timestamp: datetime | None = None
    # What the provider called it ("edit", "revoke"): named when the original is unknown.
    event: str = "update"


@dataclass
class Ignored:
    """A provider event we deliberately do not act on (listed, not an error)."""

    event: str


@dataclass
class Rejected:
    """One entry of a batch that could not be read: reported on its event while the
    rest of the batch lands. `transient` when trying again may help (the database
    was away), so the event is re-driven; otherwise it waits for a person or a fix."""

    ref: str
    reason: str
    transient: bool = False


@dataclass
class SendResult:
    external_id: str
    meta: dict = field(default_factory=dict)


InboundItem = InboundMessage | StatusUpdate | MessageUpdate | Ignored | Rejected


class ChannelAdapter:
    kind: ClassVar[str]
    # Identity kinds this channel can reach, in order of preference.
    identity_kinds: ClassVar[tuple[str, ...]]
    # Credentials keys an admin must fill in (DESIGN.md's table).
    credential_keys: ClassVar[tuple[str, ...]] = ()
    # Provider events we receive and ignore on purpose.
    ignored_events: ClassVar[tuple[str, ...]] = ()
    # Request headers that carry a secret (not a signature of the body): masked
    # before the request is stored, so admins reading events never see it.
    secret_headers: ClassVar[tuple[str, ...]] = ()
    # Whether the provider's webhooks may bring our own sends back as echoes
    # (Messenger, WhatsApp coexistence, X): a send then checks for its echo
    # before taking the provider's id. False saves that query where none come.
    echoes_sends: ClassVar[bool] = True

    def handshake(self, channel: Channel, request: HttpRequest) -> HttpResponse:
        """The provider's GET verification on the webhook URL, where it has one."""
        return HttpResponse("This channel has no verification handshake.", status=405)

    def verify(self, channel: Channel, request: HttpRequest) -> None:
        raise NotImplementedError

    def parse(self, channel: Channel, event: InboundEvent) -> list[InboundItem]:
        raise NotImplementedError

    def acknowledge(self, channel: Channel, event: InboundEvent) -> HttpResponse:
        return JsonResponse({"ok": True, "event": event.pk})

    def check_outbound(
        self,
        channel: Channel,
        *,
        thread: Thread,
        recipient: Identity,
        meta: dict,
        last_inbound_at: datetime | None = None,
    ) -> None:
        """Raise OutboundRefused when a channel rule forbids this reply now.

        `last_inbound_at`: when the customer last wrote on `channel` from
        `recipient`, as the caller already read it (None: not read). A window it
        opens is open; otherwise the adapter reads for itself.
        """

    def register_webhook(self, channel: Channel) -> str:
        """Tell the provider our webhook URL (admin action), where the provider has an API
        for it. Returns a sentence for the admin; raises SendError on failure."""
        raise NotImplementedError(f"{self.kind} webhooks are set up in the provider's console.")

    def send(self, channel: Channel, message: Message, recipient: Identity) -> SendResult:
        raise NotImplementedError

    def sends_prepare(self, channel: Channel, messages: list[Message]) -> None:
        """Before a batch of sends on this channel: what `send` would read once per message,
        read once for all of them (a conversation window). Nothing by default."""

    def reaches(self, channel: Channel, identity: Identity) -> bool:
        """Whether this channel can write to this address (a web-chat visitor only on their site's chat)."""
        return identity.kind in self.identity_kinds

    def recipient_present(self, channel: Channel, identity: Identity) -> bool | None:
        """Whether the customer is there now, for channels that know (a web-chat visitor
        on the page); None where the question has no answer (a phone, a mailbox)."""
        return None

    def typing(self, channel: Channel, *, recipient: Identity, name: str, typing: bool = True) -> None:
        """Show the customer that an agent is writing, where the channel can."""

    def seen(self, channel: Channel, *, recipient: Identity, up_to: int) -> None:
        """Show the customer that an agent has read their messages up to message `up_to`."""

    def customer_details(self, channel: Channel, *, identity: Identity, meta: dict) -> dict | None:
        """What the agent's sidebar shows about the customer on this channel, from their
        latest message's meta: {"title": str, "rows": [(label, value, link or "")]}."""
        return None

    def settings_errors(self, settings: dict) -> dict[str, str]:
        """Mistakes in a channel's settings an admin is about to save: {key: sentence}."""
        return {}

    def credentials_complete(self, credentials: dict) -> dict:
        """The credentials with what we can make ourselves filled in (a web chat's own secret)."""
        return credentials

    def dedupes_resends(self, channel: Channel) -> bool:
        """Whether the provider drops a repeat of a message by our reference (an idempotency key
        it keeps). Then a send a crash cut short simply goes again; elsewhere the agent decides."""
        return False


REFERENCE_PREFIX = "helpdesk-message-"


def message_reference(message: Message) -> str:
    """Our client reference for a message: the same on every attempt and every Retry.

    Sent as the idempotency key where a provider honours one, and as the
    reference a provider echoes in its status callbacks where it has one.
    """
    return f"{REFERENCE_PREFIX}{message.pk}"


def message_id_from_reference(reference, *, prefix: str = REFERENCE_PREFIX) -> int | None:
    """Our message id back from what a provider echoes (`prefix` + id, or the id), else None."""
    if isinstance(reference, int) and not isinstance(reference, bool):
        return reference if reference > 0 else None
    value = str(reference or "")
    if not value.startswith(prefix):
        return None
    number = value[len(prefix) :]
    # isdigit alone accepts "²", which int() refuses.
    return int(number) if number.isascii() and number.isdigit() else None


# The demo's channels carry this value as their provider credential (access
# token, account SID, bot token; the email channel's smtp_host): while
# settings.HELPDESK_SANDBOX is on, their real clients talk to the stand-in
# providers of helpdesk/sandbox.py instead of Meta, Twilio or Telegram.
SANDBOX_CREDENTIAL = "sandbox"


def provider_base_url(default: str, *, credential: str | None, provider: str) -> str:
    """The provider's API base URL, or the demo sandbox's for a sandbox credential."""
    from django.conf import settings

    if credential == SANDBOX_CREDENTIAL and settings.HELPDESK_SANDBOX:
        return f"{settings.PUBLIC_BASE_URL}/sandbox/{provider}"
    return default


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_prefixed_signature(header_value: str | None, expected_hex: str, prefix="sha256=") -> None:
    """Constant-time check of a 'sha256=<hex>' signature header."""
    if not header_value:
        raise SignatureError("missing signature")
    given = header_value.strip()
    if not given.startswith(prefix):
        raise SignatureError("malformed signature")
    if not hmac.compare_digest(given[len(prefix) :].lower(), expected_hex):
        raise SignatureError("signature mismatch")


# Normalizing at the boundary ---------------------------------------------------
#
# What a provider sends may not fit our columns: PostgreSQL refuses NUL in text
# and jsonb (Twilio and Telegram deliver it), lone surrogates cannot be encoded,
# jsonb has no NaN, and names and ids can be longer than their columns. Each of
# these fails the same way on every retry, so the message would never land:
# every parsed item is fitted here, before anything is written, whichever
# adapter made it. The original of anything shortened is kept in meta.


@lru_cache(maxsize=8)
def column_max(label: str, field: str) -> int:
    """A column's length, read from the model (one place says how long a name may be)."""
    from django.apps import apps

    return apps.get_model(label)._meta.get_field(field).max_length


def name_max() -> int:  # Customer.name and Identity.display_name are as long
    return column_max("customers.Customer", "name")


def address_max() -> int:
    return column_max("customers.Identity", "address")


def external_id_max() -> int:
    return column_max("conversations.Message", "external_id")


# Addresses that are opaque ids may be hashed; an email or phone number that
# long is nobody's, and identity validation says so.
_VALIDATED_KINDS = ("email", "phone")
_SURROGATES = re.compile("[\ud800-\udfff]")


def text_clean(value: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogate (shown as U+FFFD)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    return _SURROGATES.sub("\ufffd", value)


def data_clean(value):
    """`text_clean` through a JSON-like value (keys too); NaN and infinities become text."""
    if isinstance(value, str):
        return text_clean(value)
    if isinstance(value, dict):
        return {data_clean(str(k)): data_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [data_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def stable_id(value: str, limit: int) -> str:
    """`value` if it fits, else its SHA-256: the same long id always maps to the same short one."""
    if len(value) <= limit:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def _sender_fit(sender: Sender | None, meta: dict, role: str) -> Sender | None:
    if sender is None:
        return None
    address, name = text_clean(str(sender.address)), text_clean(str(sender.name or ""))
    if sender.kind not in _VALIDATED_KINDS and len(address) > address_max():
        meta[f"{role}_address_full"] = address
        address = stable_id(address, address_max())
    if len(name) > name_max():
        meta[f"{role}_name_full"] = name
        name = Truncator(name).chars(name_max())
    return Sender(kind=sender.kind, address=address, name=name)


def external_id_stored(external_id) -> str:
    """The provider's id as Message.external_id holds it: look-ups by a raw id use this."""
    return stable_id(text_clean(str(external_id or "")), external_id_max())


def _external_id_fit(external_id, meta: dict) -> str:
    value = text_clean(str(external_id or ""))
    if len(value) > external_id_max():
        meta["external_id_full"] = value
    return external_id_stored(value)


def item_normalize(item: InboundItem) -> InboundItem:
    """The item with every value fitted to what the database stores (see above)."""
    if isinstance(item, InboundMessage):
        meta = data_clean(item.meta) if isinstance(item.meta, dict) else {}
        return replace(
            item,
            external_id=_external_id_fit(item.external_id, meta),
            sender=_sender_fit(item.sender, meta, "sender"),
            text=text_clean(str(item.text or "")),
            html=text_clean(str(item.html or "")),
            attachments=[data_clean(a) for a in item.attachments or [] if isinstance(a, dict)],
            meta=meta,
        )
    if isinstance(item, MessageUpdate):
        meta = data_clean(item.meta) if isinstance(item.meta, dict) else {}
        return replace(
            item,
            external_id=_external_id_fit(item.external_id, meta),
            text=None if item.text is None else text_clean(str(item.text)),
            attachments=[data_clean(a) for a in item.attachments or [] if isinstance(a, dict)],
            meta=meta,
        )
    if isinstance(item, StatusUpdate):
        scratch: dict = {}
        return replace(
            item,
            external_id=_external_id_fit(item.external_id, scratch),
            error=text_clean(str(item.error or "")),
            recipient=_sender_fit(item.recipient, scratch, "recipient"),
        )
    if isinstance(item, Ignored):
        return Ignored(event=text_clean(str(item.event)))
    if isinstance(item, Rejected):
        return replace(item, ref=text_clean(str(item.ref))[:300], reason=text_clean(str(item.reason)))
    return item


# Failures --------------------------------------------------------------------


def error_is_transient(exc: BaseException) -> bool:
    """Whether trying again later may succeed: the database, Redis or a provider
    was unreachable or timed out. Anything else (bad data, a timestamp out of
    range, an adapter's bug) fails the same way every time, so it is not re-driven;
    an admin can still reprocess it after a fix."""
    import httpx
    import redis.exceptions
    from django.db import InterfaceError, OperationalError

    return isinstance(
        exc,
        OperationalError
        | InterfaceError
        | redis.exceptions.ConnectionError
        | redis.exceptions.TimeoutError
        | httpx.TransportError
        | ConnectionError
        | TimeoutError
        | TransientSendError,
    )


def error_reason(exc: BaseException) -> str:
    """A failure in a line an admin can read: the message, or the exception's type."""
    if isinstance(exc, ParseError | SendError):
        text = str(exc)
    else:
        from django.core.exceptions import ValidationError

        if isinstance(exc, ValidationError):
            text = "; ".join(exc.messages)
        else:
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text_clean(text)[:1000]


def entries_read(entries, read, *, where: str) -> list[InboundItem]:
    """`read(entry)` for each entry of a provider's batch, each on its own: an entry
    that cannot be read becomes a `Rejected` naming it and why, and the others still
    land. `read` returns an item or a list of items."""
    if not isinstance(entries, list):
        reason = gettext("expected a list, got %(type)s") % {"type": type(entries).__name__}
        return [Rejected(ref=where, reason=reason)]
    items: list[InboundItem] = []
    for n, entry in enumerate(entries):
        try:
            result = read(entry)
        except Exception as exc:  # noqa: BLE001 - one bad entry must not sink its batch
            ref = f"{where}[{n}]"
            if isinstance(entry, dict):
                known = next((entry[k] for k in ("id", "mid", "message_id") if entry.get(k)), None)
                if isinstance(known, str | int):
                    ref = f"{ref} {known}"
            items.append(Rejected(ref=ref, reason=error_reason(exc), transient=error_is_transient(exc)))
        else:
            for item in result if isinstance(result, list) else [result]:
                if isinstance(item, Rejected):
                    # Rejected deeper in the batch: the full path finds it in the payload.
                    item = replace(item, ref=f"{where}[{n}].{item.ref}")
                items.append(item)
    return items
