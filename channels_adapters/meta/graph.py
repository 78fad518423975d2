"""The Graph API client shared by Messenger, Instagram and WhatsApp Cloud.

httpx (one client per process, channels_adapters/http.py) with the base URL
and version from settings (tests point it at a local server). Graph answers
errors as ``{"error": {"message", "type", "code", "error_subcode",
"error_data": {"details"}, "fbtrace_id"}}``; `graph_error` turns them into a
retry or a sentence the agent can act on.
"""

from __future__ import annotations

import httpx
from django.conf import settings

from channels_adapters.base import PermanentSendError, SendError, TransientSendError, provider_base_url
from channels_adapters.http import provider_http

# Rate limits and throttling: waiting helps.
RATE_LIMIT_CODES = {4, 17, 32, 613, 80007, 130429, 131056}
# Meta's own hiccups ("unknown error", "service unavailable", "something went wrong").
TEMPORARY_CODES = {1, 2, 131000, 131016, 133004}

_PLAIN = {
    190: "The access token has expired or was revoked: an admin must paste a new token in the "
    "channel's credentials.",
    10: "Meta refused the message: the app lacks the permission to send it (or the conversation "
    "window has closed).",
    551: "This person cannot be reached right now (they may have blocked the page or deleted the account).",
    131026: "WhatsApp could not deliver the message: the number may not be on WhatsApp, or the "
    "customer has not accepted WhatsApp's current terms.",
    131047: "More than 24 hours have passed since the customer last wrote on WhatsApp: only an "
    "approved template can be sent now.",
    131051: "WhatsApp does not support this type of message.",
    131052: "WhatsApp could not download the media the customer sent.",
    131053: "WhatsApp could not upload the media in this message (check its type and size).",
    131021: "The recipient is the business number itself.",
    131031: "The WhatsApp business account is locked: an admin must check it in Meta's Business Manager.",
    131008: "Meta rejected the message: a required parameter is missing.",
    131009: "Meta rejected the message: a parameter value is not valid.",
    132000: "The template's parameters do not match the approved template (wrong number of values).",
    132001: "That template does not exist in this language, or is not approved yet.",
    132005: "The template text is too long once its parameters are filled in.",
    132007: "The template's content breaks WhatsApp's policy.",
    132012: "The template's parameters are not in the format the template expects.",
    132015: "That template is paused because of low quality.",
    132016: "That template is disabled because of low quality.",
    368: "Meta has temporarily blocked this page or number from sending, for policy violations.",
    100: "Meta rejected a parameter of the message",
    2018278: "The message was sent outside the window Messenger allows (24 hours, or 7 days with "
    "the human agent tag).",
    2018108: "This person cannot receive messages from the page right now.",
    2018001: "No person matches this id on this page (the customer id is from another page?).",
}


def plain_reason(code: int | None, subcode: int | None, message: str, details: str = "") -> str:
    """One sentence for the agent, with Meta's own words kept for whoever debugs it."""
    label = f"{code}" + (f"/{subcode}" if subcode else "")
    base = _PLAIN.get(subcode or 0)
    if base is None and code is not None and 200 <= code <= 299:
        base = _PLAIN[10]
    if base is None:
        base = _PLAIN.get(code or 0)
    words = details or message
    if base is None:
        return (
            f"Meta refused the message (error {label}): {words}"
            if words
            else f"Meta refused the message (error {label})."
        )
    return f"{base} (Meta error {label}: {words})" if words else base


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def graph_error(status: int, payload, *, retry_after: str | None = None) -> SendError:
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    message = str(error.get("message") or error.get("title") or "")
    details = ""
    if isinstance(error.get("error_data"), dict):
        details = str(error["error_data"].get("details") or "")
    label = f"{code}" + (f"/{subcode}" if subcode else "") if code is not None else str(status)
    if code in RATE_LIMIT_CODES or status == 429:
        return TransientSendError(
            f"Meta is rate-limiting this channel (error {label}); the message will be retried.",
            code=label,
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    if code in TEMPORARY_CODES or status >= 500 or error.get("is_transient") is True:
        return TransientSendError(
            f"Meta had a temporary problem (error {label}: {message or f'HTTP {status}'}); retrying.",
            code=label,
        )
    if not error:
        body = str(payload)[:300] if payload else ""
        return PermanentSendError(f"Meta refused the message (HTTP {status}): {body}", code=str(status))
    return PermanentSendError(plain_reason(code, subcode, message, details), code=label)


def graph_url(path: str, token: str | None = None) -> str:
    base = provider_base_url(settings.GRAPH_API_BASE_URL, credential=token, provider="graph")
    return f"{base}/{settings.GRAPH_API_VERSION}/{path.lstrip('/')}"


def graph_request(method: str, path: str, *, token: str, json: dict | None = None, params=None) -> dict:
    """One Graph call with the token as a bearer header (never in the URL, which gets logged)."""
    if not token:
        raise PermanentSendError(
            "The channel has no access token: an admin must fill it in the channel's credentials."
        )
    try:
        response = provider_http().request(
            method,
            graph_url(path, token),
            json=json,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=settings.HELPDESK["HTTP_TIMEOUT_SECONDS"],
        )
    except httpx.TimeoutException as exc:
        raise TransientSendError(f"Meta did not answer in time ({exc}); retrying.") from exc
    except httpx.HTTPError as exc:
        raise TransientSendError(f"Could not reach Meta's Graph API: {exc}; retrying.") from exc
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if response.status_code >= 400 or (isinstance(payload, dict) and "error" in payload):
        raise graph_error(response.status_code, payload, retry_after=response.headers.get("Retry-After"))
    if not isinstance(payload, dict):
        raise TransientSendError("Meta answered with something that is not a JSON object; retrying.")
    return payload


def graph_download(url: str, *, token: str) -> tuple[bytes, str]:
    """Media URLs from Graph need the same bearer token; they expire after a few minutes."""
    try:
        response = provider_http().get(
            url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=settings.HELPDESK["HTTP_TIMEOUT_SECONDS"],
            follow_redirects=True,
        )
    except httpx.HTTPError as exc:
        raise TransientSendError(f"Could not download the media from Meta: {exc}") from exc
    if response.status_code >= 400:
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        raise graph_error(response.status_code, payload)
    return response.content, response.headers.get("Content-Type", "").split(";")[0].strip()
