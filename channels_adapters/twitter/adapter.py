"""X (Twitter) direct messages through the Account Activity API.

Webhook: the CRC ``GET ?crc_token=`` answered with the consumer secret, and
``x-twitter-webhooks-signature`` on every POST. ``direct_message_events`` of
type ``message_create`` become messages; a public @mention
(``tweet_create_events``) is not a DM and is ignored. Replies go out with the
v2 endpoint ``POST /2/dm_conversations/with/{participant_id}/messages``,
signed with OAuth 1.0a user context (the account's access token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import time
from datetime import UTC, datetime
from functools import partial
from urllib.parse import quote, urlsplit

import httpx
from django.conf import settings
from django.http import HttpResponse, JsonResponse

from channels_adapters.base import (
    ChannelAdapter,
    Ignored,
    InboundMessage,
    ParseError,
    PermanentSendError,
    Sender,
    SendResult,
    SignatureError,
    StatusUpdate,
    TransientSendError,
    entries_read,
)
from channels_adapters.http import provider_http
from channels_adapters.meta.messenger import public_url
from customers.models import IdentityKind

SIGNATURE_HEADER = "x-twitter-webhooks-signature"
CRC_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{1,256}")
TEXT_LIMIT = 10000


def _hmac_b64(secret: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def _millis(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError):
        return None


def _pct(value: str) -> str:
    return quote(str(value), safe="~")


def oauth1_header(method: str, url: str, *, credentials: dict, nonce: str = "", timestamp: str = "") -> str:
    """OAuth 1.0a (HMAC-SHA1) for a JSON request: only the oauth_* and query parameters are signed."""
    parts = urlsplit(url)
    oauth = {
        "oauth_consumer_key": credentials.get("consumer_key", ""),
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": timestamp or str(int(time.time())),
        "oauth_token": credentials.get("access_token", ""),
        "oauth_version": "1.0",
    }
    query = [tuple(p.split("=", 1)) for p in parts.query.split("&") if p] if parts.query else []
    pairs = sorted((_pct(k), _pct(v)) for k, v in [*oauth.items(), *query])
    base = "&".join(
        [
            method.upper(),
            _pct(f"{parts.scheme}://{parts.netloc}{parts.path}"),
            _pct("&".join(f"{k}={v}" for k, v in pairs)),
        ]
    )
    key = f"{_pct(credentials.get('consumer_secret', ''))}&{_pct(credentials.get('access_token_secret', ''))}"
    oauth["oauth_signature"] = base64.b64encode(
        hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()
    ).decode()
    return "OAuth " + ", ".join(f'{_pct(k)}="{_pct(v)}"' for k, v in sorted(oauth.items()))


def _x_error(response: httpx.Response):
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    payload = payload if isinstance(payload, dict) else {}
    errors = payload.get("errors") or []
    detail = str(
        payload.get("detail")
        or (errors[0].get("message") if errors and isinstance(errors[0], dict) else "")
        or ""
    )
    status = response.status_code
    if status == 429:
        reset = response.headers.get("x-rate-limit-reset", "")
        wait = max(float(reset) - time.time(), 1.0) if reset.isdigit() else None
        return TransientSendError(
            "X is rate-limiting this account; the message will be retried.", code="429", retry_after=wait
        )
    if status >= 500:
        return TransientSendError(f"X had a temporary problem (HTTP {status}); retrying.", code=str(status))
    if status == 401:
        return PermanentSendError(
            "X refused the account's credentials: the access token was revoked or the keys are wrong; "
            "an admin must update them in the channel.",
            code="401",
        )
    if status == 403:
        return PermanentSendError(
            f"X does not allow this DM (the person may not accept messages from this account): {detail}",
            code="403",
        )
    return PermanentSendError(
        f"X refused the message (HTTP {status}): {detail or response.text[:300]}", code=str(status)
    )


class TwitterAdapter(ChannelAdapter):
    kind = "twitter"
    identity_kinds = (IdentityKind.TWITTER,)
    credential_keys = ("consumer_key", "consumer_secret", "access_token", "access_token_secret", "user_id")
    ignored_events = (
        "tweet_create_events (public mentions are not DMs)",
        "favorite_events",
        "follow_events",
        "unfollow_events",
        "block_events",
        "mute_events",
        "tweet_delete_events",
        "direct_message_indicate_typing_events",
        "user_event",
        "events for another account (for_user_id)",
    )

    def handshake(self, channel, request):
        token = request.GET.get("crc_token", "")
        secret = channel.credentials.get("consumer_secret", "")
        if not token or not secret:
            return HttpResponse("A CRC check needs crc_token.", status=400, content_type="text/plain")
        # The answer is the same HMAC that signs webhook bodies: answering any token
        # would sign any body a caller chose (a forged DM). X's tokens are short
        # random base64 strings, and no JSON body is made of those characters alone.
        if not CRC_TOKEN.fullmatch(token):
            return HttpResponse(
                "crc_token must be a short base64 string.", status=400, content_type="text/plain"
            )
        return JsonResponse({"response_token": "sha256=" + _hmac_b64(secret, token.encode())})

    def verify(self, channel, request):
        secret = channel.credentials.get("consumer_secret", "")
        given = (request.headers.get(SIGNATURE_HEADER) or "").strip()
        if not secret:
            raise SignatureError("the channel has no consumer secret")
        if not given.startswith("sha256="):
            raise SignatureError("missing or malformed signature")
        expected = "sha256=" + _hmac_b64(secret, request.body)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise SignatureError("signature mismatch")

    def parse(self, channel, event):
        try:
            payload = json.loads(event.body_bytes)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParseError(f"The body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise ParseError("An Account Activity event is a JSON object")
        for_user = str(payload.get("for_user_id") or "")
        ours = str(channel.credentials.get("user_id") or "")
        if ours and for_user and for_user != ours:
            return [Ignored("other_account")]
        users = payload.get("users") if isinstance(payload.get("users"), dict) else {}
        items = []
        for key, value in payload.items():
            if key in ("for_user_id", "users", "apps", "user_has_blocked"):
                continue
            if key == "direct_message_events":
                app_id = str((channel.settings or {}).get("app_id") or "")
                read = partial(self._dm, for_user=for_user, users=users, app_id=app_id)
                items += entries_read(value or [], read, where=key)
            elif key == "direct_message_mark_read_events":
                items += entries_read(value or [], lambda e: self._read(e, for_user), where=key)
            else:
                items.append(Ignored(key))
        return items

    def _dm(self, data: dict, for_user: str, users: dict, app_id: str = ""):
        if not isinstance(data, dict) or not data.get("id"):
            raise ParseError("A direct message event needs an 'id'")
        if data.get("type") != "message_create":
            return Ignored(f"direct_message:{data.get('type')}")
        create = data.get("message_create") or {}
        sender_id = str(create.get("sender_id") or "")
        recipient_id = str((create.get("target") or {}).get("recipient_id") or "")
        message_data = create.get("message_data") or {}
        # X sends the text HTML-escaped ("&amp;", "&lt;").
        text = html.unescape(str(message_data.get("text") or ""))
        for link in (message_data.get("entities") or {}).get("urls") or []:
            if link.get("url") and link.get("expanded_url"):
                text = text.replace(link["url"], link["expanded_url"])
        attachments = []
        media = (message_data.get("attachment") or {}).get("media")
        if isinstance(media, dict):
            url = str(media.get("media_url_https") or "")
            # The media's t.co link is in the text; the file itself is the attachment.
            for placeholder in (media.get("url"), media.get("expanded_url")):
                if placeholder:
                    text = text.replace(placeholder, "").strip()
            attachments.append(
                {
                    "url": url,
                    "type": str(media.get("type") or "photo"),
                    "content_type": "image/jpeg" if media.get("type", "photo") == "photo" else "video/mp4",
                    "name": url.rsplit("/", 1)[-1],
                }
            )
        echo = bool(for_user) and sender_id == for_user
        if echo and app_id and str(create.get("source_app_id") or "") == app_id:
            # Sent by this helpdesk through the API: the send recorded it already.
            return Ignored("direct_message:own_send")
        person = recipient_id if echo else sender_id
        profile = users.get(person) if isinstance(users.get(person), dict) else {}
        return InboundMessage(
            external_id=str(data["id"]),
            sender=Sender(IdentityKind.TWITTER, person, str(profile.get("name") or "")),
            text=text,
            kind="media" if attachments and not text else "text",
            attachments=attachments,
            timestamp=_millis(data.get("created_timestamp")),
            meta={"screen_name": profile.get("screen_name")} if profile.get("screen_name") else {},
            echo=echo,
        )

    def _read(self, data: dict, for_user: str):
        reader = str((data or {}).get("sender_id") or "")
        at = _millis((data or {}).get("created_timestamp"))
        if not reader or reader == for_user or at is None:
            return Ignored("direct_message_mark_read:ours")
        return StatusUpdate(
            external_id="",
            status="read",
            timestamp=at,
            watermark=at,
            recipient=Sender(IdentityKind.TWITTER, reader),
        )

    def send(self, channel, message, recipient):
        # The v2 DM endpoint takes media only as uploaded media ids: files go as links.
        links = [public_url(a["url"]) for a in message.attachments or [] if a.get("url")]
        text = "\n".join(part for part in [message.body or "", *links] if part)
        if len(text) > TEXT_LIMIT:
            raise PermanentSendError(
                f"X accepts {TEXT_LIMIT:,} characters per DM and this one has {len(text):,}."
            )
        url = (
            f"{settings.X_API_BASE_URL}/2/dm_conversations/with/{quote(recipient.address, safe='')}/messages"
        )
        credentials = channel.credentials
        if credentials.get("bearer_token"):
            # An OAuth 2.0 user-context token, when the account was connected that way.
            authorization = f"Bearer {credentials['bearer_token']}"
        else:
            authorization = oauth1_header("POST", url, credentials=credentials)
        try:
            response = provider_http().post(
                url,
                json={"text": text},
                headers={"Authorization": authorization},
                timeout=settings.HELPDESK["HTTP_TIMEOUT_SECONDS"],
            )
        except httpx.TimeoutException as exc:
            raise TransientSendError(f"X did not answer in time ({exc}); retrying.") from exc
        except httpx.HTTPError as exc:
            raise TransientSendError(f"Could not reach X: {exc}; retrying.") from exc
        if response.status_code >= 400:
            raise _x_error(response)
        try:
            data = response.json().get("data") or {}
        except (ValueError, AttributeError):
            data = {}
        return SendResult(
            external_id=str(data.get("dm_event_id") or f"helpdesk-{message.pk}"),
            meta={"dm_conversation_id": data.get("dm_conversation_id")},
        )
