"""What Meta's three webhooks share: the verify-token handshake, the
``X-Hub-Signature-256`` check and reading the JSON envelope."""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime

from django.http import HttpResponse

from channels_adapters.base import ParseError, SignatureError, check_prefixed_signature, hmac_sha256_hex

SIGNATURE_HEADER = "X-Hub-Signature-256"


def verify_token_handshake(channel, request) -> HttpResponse:
    """Meta's subscription check: echo hub.challenge only to the one who knows our verify token."""
    expected = str(channel.credentials.get("verify_token") or "")
    given = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge", "")
    if (
        request.GET.get("hub.mode") != "subscribe"
        or not expected
        or not challenge
        or not hmac.compare_digest(given.encode(), expected.encode())
    ):
        return HttpResponse("Forbidden: wrong verify token", status=403, content_type="text/plain")
    return HttpResponse(challenge, content_type="text/plain")


def verify_signature(request, *secrets: str) -> None:
    """HMAC-SHA256 of the raw bytes (Meta escapes non-ASCII as \\uXXXX before signing,
    so re-serialized JSON would not match). Any of the given secrets may have signed."""
    header = request.headers.get(SIGNATURE_HEADER)
    candidates = [s for s in secrets if s]
    if not candidates:
        raise SignatureError("the channel has no app secret")
    last: SignatureError | None = None
    for secret in candidates:
        try:
            check_prefixed_signature(header, hmac_sha256_hex(secret, request.body))
            return
        except SignatureError as exc:
            last = exc
    raise last


def load_envelope(event, expected_objects: tuple[str, ...]) -> dict:
    try:
        payload = json.loads(event.body_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"The body is not JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise ParseError("A Meta webhook is an object with an 'entry' list")
    if payload.get("object") not in expected_objects:
        raise ParseError(
            f"This channel receives {' or '.join(expected_objects)} webhooks, not {payload.get('object')!r}"
        )
    return payload


def from_millis(value) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ParseError(f"{value!r} is not a timestamp") from exc
    # Meta mixes units: Messenger sends milliseconds, WhatsApp seconds.
    return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, tz=UTC)
