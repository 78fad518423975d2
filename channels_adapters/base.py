"""The contract every channel adapter fulfils.

An adapter turns one provider's webhook into normalized items and sends our
messages with the provider's client. Everything else (storing the event,
identity resolution, threads, cases, retries, real-time pushes) is shared and
lives in services, so adding a channel touches one folder and one registry line.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from django.http import HttpRequest, HttpResponse, JsonResponse

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


@dataclass
class Ignored:
    """A provider event we deliberately do not act on (listed, not an error)."""

    event: str


@dataclass
class SendResult:
    external_id: str
    meta: dict = field(default_factory=dict)


InboundItem = InboundMessage | StatusUpdate | MessageUpdate | Ignored


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

    def handshake(self, channel: Channel, request: HttpRequest) -> HttpResponse:
        """The provider's GET verification on the webhook URL, where it has one."""
        return HttpResponse("This channel has no verification handshake.", status=405)

    def verify(self, channel: Channel, request: HttpRequest) -> None:
        raise NotImplementedError

    def parse(self, channel: Channel, event: InboundEvent) -> list[InboundItem]:
        raise NotImplementedError

    def acknowledge(self, channel: Channel, event: InboundEvent) -> HttpResponse:
        return JsonResponse({"ok": True, "event": event.pk})

    def check_outbound(self, channel: Channel, *, thread: Thread, recipient: Identity, meta: dict) -> None:
        """Raise OutboundRefused when a channel rule forbids this reply now."""

    def register_webhook(self, channel: Channel) -> str:
        """Tell the provider our webhook URL (admin action), where the provider has an API
        for it. Returns a sentence for the admin; raises SendError on failure."""
        raise NotImplementedError(f"{self.kind} webhooks are set up in the provider's console.")

    def send(self, channel: Channel, message: Message, recipient: Identity) -> SendResult:
        raise NotImplementedError

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


def message_id_from_reference(reference) -> int | None:
    value = str(reference or "")
    if not value.startswith(REFERENCE_PREFIX):
        return None
    number = value[len(REFERENCE_PREFIX) :]
    return int(number) if number.isdigit() else None


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
