"""Twilio plumbing shared by the SMS, WhatsApp (Twilio) and Voice channels.

- `verify_signature`: `X-Twilio-Signature` checked with the library's
  `RequestValidator` on the URL Twilio called. Behind a proxy Django sees another
  host or scheme, so the public base URL setting wins; X-Forwarded-Proto is
  honoured for deployments that leave the base URL at its default.
- `rest_client`: the real `twilio.rest.Client`, its API domain pointed at
  settings.TWILIO_API_BASE_URL (tests use a local server that answers like Twilio).
- `send_error`: a Twilio REST error turned into a retry or plain words for the agent.
- Webhook sub-events (status callbacks, voice steps) are told apart by an
  ``event`` query parameter on the channel's one webhook URL; Twilio signs the
  URL with its query string, so it cannot be forged either.
"""

from __future__ import annotations

import functools
from urllib.parse import parse_qsl, urlencode

import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels_adapters.base import (
    ParseError,
    PermanentSendError,
    SendError,
    SignatureError,
    TransientSendError,
    provider_base_url,
)
from channels_adapters.http import twilio_http

SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def public_base_url() -> str:
    conf = getattr(settings, "HELPDESK", {})
    return (conf.get("PUBLIC_BASE_URL") or settings.PUBLIC_BASE_URL).rstrip("/")


def hook_url(channel, **params) -> str:
    """The public URL of the channel's webhook, with an ``event`` sub-path as query parameters."""
    url = public_base_url() + _webhook_path(channel.key)
    return f"{url}?{urlencode(params)}" if params else url


@functools.lru_cache(maxsize=4096)
def _webhook_path(key) -> str:
    # Every send's status callback URL: reverse() once per channel, not once per send.
    return reverse("webhook", kwargs={"key": key})


def candidate_urls(request: HttpRequest) -> list[str]:
    """The URLs Twilio may have signed: the configured public one first, then what the proxy says.

    The host is Django's (it honours USE_X_FORWARDED_HOST when a deployment
    trusts its proxy for it); only the scheme is taken from X-Forwarded-Proto,
    since TLS usually ends at the proxy.
    """
    path = request.get_full_path()
    urls = [public_base_url() + path]
    forwarded_proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    scheme = forwarded_proto if forwarded_proto in ("http", "https") else request.scheme
    seen = f"{scheme}://{request.get_host()}{path}"
    if seen not in urls:
        urls.append(seen)
    return urls


def verify_signature(channel, request: HttpRequest) -> None:
    token = channel.credentials.get("auth_token") or ""
    signature = request.headers.get(SIGNATURE_HEADER)
    if not token:
        raise SignatureError("the channel has no auth_token")
    if not signature:
        raise SignatureError("missing X-Twilio-Signature")
    validator = RequestValidator(token)
    params = request.POST if request.content_type == "application/x-www-form-urlencoded" else {}
    if not any(validator.validate(url, params, signature) for url in candidate_urls(request)):
        raise SignatureError("X-Twilio-Signature does not match")


def form(event) -> QueryDict:
    """The form Twilio posted, as stored."""
    try:
        return QueryDict(event.body_bytes.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ParseError(f"The body is not UTF-8 form data: {exc}") from exc


def query_param(event, name: str) -> str:
    return dict(parse_qsl(event.query_string or "")).get(name, "")


def event_name(event) -> str:
    return query_param(event, "event")


def twiml_response(twiml: str) -> HttpResponse:
    return HttpResponse(twiml, content_type="text/xml; charset=utf-8")


# Outbound --------------------------------------------------------------------


def rest_client(channel) -> Client:
    credentials = channel.credentials
    if not credentials.get("account_sid") or not credentials.get("auth_token"):
        raise PermanentSendError(
            f"The channel {channel.name} has no Twilio account SID or auth token: an admin must fill them in."
        )
    # The process's (thread's) session: connections kept between sends.
    http_client = twilio_http(settings.HELPDESK["HTTP_TIMEOUT_SECONDS"])
    base_url = provider_base_url(
        settings.TWILIO_API_BASE_URL, credential=credentials["account_sid"], provider="twilio"
    )
    # One client per thread and account: the library builds its resource tree
    # (api, v2010, account, messages) lazily on a client, once rather than per send.
    key = (id(http_client), credentials["account_sid"], credentials["auth_token"], base_url)
    clients = http_client.__dict__.setdefault("_helpdesk_clients", {})
    client = clients.get(key)
    if client is None:
        client = Client(credentials["account_sid"], credentials["auth_token"], http_client=http_client)
        # The library's own switch for its API domain: every resource under client.api
        # (messages, calls, incoming numbers) builds its URL from it.
        client.api.base_url = base_url
        if len(clients) > 256:
            clients.clear()
        clients[key] = client
    return client


def configure_number(channel, **fields) -> str:
    """Point the channel's Twilio number at our webhook (the admin's "register webhook" action).

    Finds the IncomingPhoneNumber by the channel's phone_number and updates the
    given URL fields (voice_url, sms_url, status_callback...) through the REST API.
    """
    number = channel.credentials.get("phone_number") or ""
    if not number:
        raise PermanentSendError(f"The channel {channel.name} has no phone_number to configure.")
    client = rest_client(channel)
    try:
        found = client.incoming_phone_numbers.list(phone_number=number, limit=1)
        if not found:
            raise PermanentSendError(
                f"The Twilio account has no number {number}: check the channel's phone_number."
            )
        client.incoming_phone_numbers(found[0].sid).update(**fields)
    except (TwilioRestException, requests.RequestException) as exc:
        raise send_error(exc) from exc
    return f"Twilio number {number} now calls {hook_url(channel)}."


# Twilio error codes an agent or admin can act on, in plain words.
_PLAIN = {
    20003: "Twilio rejected the channel's credentials: an admin must check the account SID and auth token.",
    20404: "Twilio does not know this resource (wrong account SID, or the number was released).",
    21211: "The customer's phone number is not valid.",
    21408: "Sending to this country is not enabled on the Twilio account.",
    21602: "The message has no text or media.",
    21606: "The channel's number cannot send this kind of message (not SMS-capable, or not yours).",
    21608: "The Twilio account is a trial: it can only send to verified numbers.",
    21610: "The customer has unsubscribed (replied STOP); they must text START before we can write again.",
    21612: "This number cannot reach the customer's number (carrier or country not supported).",
    21614: "The customer's number is not a mobile number and cannot receive text messages.",
    21617: "The message is too long (Twilio accepts up to 1,600 characters).",
    21620: "Twilio could not fetch an attachment of this message (the link must be public).",
    21660: "The channel's number does not belong to this Twilio account.",
    30003: "The customer's phone is unreachable (switched off or out of coverage).",
    30004: "The message was blocked (the customer may have blocked this number).",
    30005: "The customer's number does not exist or is no longer in service.",
    30006: "The customer's number is a landline or its carrier cannot receive messages.",
    30007: "The carrier filtered the message as spam.",
    30008: "The carrier could not deliver the message, for a reason it did not give.",
    30034: "The message was blocked: the sending number is not registered for A2P 10DLC.",
    63003: "The customer's number is not on WhatsApp.",
    63016: "More than 24 hours have passed since the customer last wrote on WhatsApp: only an approved "
    "template can be sent now.",
    63018: "WhatsApp's rate limit for this sender was exceeded; try again later.",
    63024: "WhatsApp says this recipient cannot receive messages from the business.",
    63032: "WhatsApp did not deliver the message: the customer may not accept marketing messages.",
}
_RATE_LIMIT_CODES = {20429, 63018}


def plain_reason(code: int | str | None, message: str = "") -> str:
    """One sentence for the agent, with Twilio's own words kept for whoever debugs it."""
    try:
        number = int(code) if code not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    base = _PLAIN.get(number or 0)
    label = f"Twilio error {number}" if number else "Twilio"
    if base is None:
        base = "Twilio could not deliver the message"
        return f"{base} ({label}: {message})." if message else f"{base} ({label})."
    return f"{base} ({label}: {message})" if message else f"{base} ({label})"


def send_error(exc: Exception) -> SendError:
    if isinstance(exc, TwilioRestException):
        message = (exc.msg or "").split(": ", 1)[-1]
        if exc.status == 429 or exc.code in _RATE_LIMIT_CODES:
            return TransientSendError(plain_reason(exc.code, message), code=str(exc.code or exc.status))
        if exc.status >= 500:
            return TransientSendError(
                f"Twilio answered HTTP {exc.status}; retrying.", code=str(exc.code or exc.status)
            )
        return PermanentSendError(plain_reason(exc.code, message), code=str(exc.code or exc.status))
    if isinstance(exc, requests.Timeout):
        return TransientSendError(f"Twilio did not answer in time ({exc}).")
    if isinstance(exc, requests.RequestException):
        return TransientSendError(f"Could not reach Twilio: {exc}.")
    raise exc
