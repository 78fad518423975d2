"""The visitor token: who a browser is on one website-chat channel.

Signed with the project's secret (django.core.signing), kept by the frame in
localStorage and sent as a bearer token, so no cookie of ours is needed on
someone else's site. It names the visitor's web-chat address; the identity
row itself is created only when the visitor first writes, so thousands of
visitors who never chat cost no rows.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

_SALT = "webchat.visitor"
# A host site's own user ids and emails fit; anything longer is not an identifier.
IDENTIFIER_MAX = 200


class TokenInvalid(Exception):
    pass


@dataclass(frozen=True)
class Visitor:
    channel_key: str
    # Random for an anonymous visitor; the host site's user identifier once verified.
    ref: str
    verified: bool
    origin: str
    # The panel's language (the visitor's browser, or the channel's default): the
    # server's sentences (errors, availability) follow it.
    language: str = "en"

    @property
    def address(self) -> str:
        """The `webchat` identity's address: scoped to the channel, so two sites'
        visitors (or user ids) never meet."""
        return f"{self.channel_key}:{'u' if self.verified else 'v'}:{self.ref}"

    @property
    def group(self) -> str:
        """The channel-layer group of this visitor's sockets (every tab, every device)."""
        return "webchat." + hashlib.sha256(self.address.encode()).hexdigest()[:40]


def visitor_new(*, channel_key: str, origin: str) -> Visitor:
    return Visitor(channel_key=channel_key, ref=secrets.token_urlsafe(16), verified=False, origin=origin)


def visitor_verified(*, channel_key: str, identifier: str, origin: str) -> Visitor:
    return Visitor(channel_key=channel_key, ref=identifier, verified=True, origin=origin)


def visitor_from_address(address: str) -> Visitor | None:
    """The visitor a web-chat identity's address names (the inverse of Visitor.address)."""
    key, _, rest = address.partition(":")
    marker, _, ref = rest.partition(":")
    if not key or marker not in ("u", "v") or not ref:
        return None
    return Visitor(channel_key=key, ref=ref, verified=marker == "u", origin="")


def token_issue(visitor: Visitor) -> str:
    return signing.dumps(
        {
            "c": visitor.channel_key,
            "r": visitor.ref,
            "u": int(visitor.verified),
            "o": visitor.origin,
            "l": visitor.language,
        },
        salt=_SALT,
        compress=True,
    )


def token_read(token: str, *, channel_key: str) -> Visitor:
    """The visitor a token names; TokenInvalid when tampered with, too old or of another channel."""
    if not token or not isinstance(token, str) or len(token) > 2000:
        raise TokenInvalid("no token")
    try:
        data = signing.loads(
            token, salt=_SALT, max_age=settings.HELPDESK["WEBCHAT_TOKEN_MAX_AGE_DAYS"] * 86400
        )
    except signing.BadSignature as exc:
        raise TokenInvalid(str(exc)) from exc
    if not isinstance(data, dict) or data.get("c") != channel_key or not data.get("r"):
        raise TokenInvalid("token of another channel")
    return Visitor(
        channel_key=channel_key,
        ref=str(data["r"]),
        verified=bool(data.get("u")),
        origin=str(data.get("o") or ""),
        language=str(data.get("l") or "en")[:8],
    )


def identity_hash(secret: str, identifier: str) -> str:
    return hmac.new(secret.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def identity_hash_valid(*, secret: str, identifier: str, given: str) -> bool:
    if not secret or not identifier or not given or not isinstance(given, str):
        return False
    return hmac.compare_digest(identity_hash(secret, identifier), given.strip().lower())
