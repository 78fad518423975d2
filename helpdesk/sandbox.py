"""Stand-in providers for the demo: the seeded channels' replies land here.

`make run` (the embedded default) has no shop backend, no Meta app, no Twilio
account and no Telegram bot to send replies to, so the demo channels point
here and a reply goes through the real adapter, the real provider client and
the real webhook:

- the API channel's callback_url is `api/<key>/`: the signature is checked like
  any receiver would, and the channel's signed "delivered" callback follows;
- WhatsApp and Messenger (access token "sandbox", channels_adapters.base
  SANDBOX_CREDENTIAL) reach `graph/`, which answers as the Graph API does and
  then posts the signed status webhook Meta would (delivered);
- SMS (account SID "sandbox") reaches `twilio/`, which answers as Twilio's REST
  API does and posts the signed StatusCallback (sent, then delivered);
- Telegram (bot token "sandbox") reaches `telegram/`, which answers as the Bot
  API does (Telegram has no delivery receipts: the reply stays "sent").

So a new user watches queued -> sent -> delivered. A reply containing "#fail" is
refused with the provider's own error so the failure path can be seen on
purpose, and only then.

In eager mode the reply's own request waits on this callback, served by the
same server: that needs a second request thread (ASGI_REQUEST_THREADS, 4 by
default; runserver threads too), and the status callback is posted from a
thread after we answer so nothing waits on itself.

Mounted only while settings.HELPDESK_SANDBOX is on (DEBUG's default); production
refuses to start with it on (helpdesk/settings.py, production_problems).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from urllib.parse import urlencode

import httpx
from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import path, re_path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from channels_adapters.api.adapter import SIGNATURE_HEADER
from channels_adapters.base import (
    SANDBOX_CREDENTIAL,
    SignatureError,
    check_prefixed_signature,
    hmac_sha256_hex,
)
from channels_adapters.models import Channel
from channels_adapters.twilio.resources import message_resource

logger = logging.getLogger(__name__)

FAIL_MARKER = "#fail"


def sandbox_callback_url(channel: Channel) -> str:
    """Where a demo API channel sends its replies: this app, at its public address."""
    return settings.PUBLIC_BASE_URL + reverse("sandbox-api-callback", kwargs={"key": channel.key})


def _post_later(url: str, posts: list, delay: float) -> None:
    """Post the provider's status callbacks to our own webhook, from a thread.

    Each post is (body, headers), or a function building them when it is sent,
    for the payloads that carry the time of the event.

    After the send has been answered: in eager mode the reply's request is still
    waiting on our answer, and the webhook it would need is served by the same
    process; posting before answering could starve it.
    """

    def run():
        for post in posts:
            time.sleep(delay)
            body, headers = post() if callable(post) else post
            try:
                response = httpx.post(
                    url, content=body, headers=headers, timeout=settings.HELPDESK["HTTP_TIMEOUT_SECONDS"]
                )
                if response.status_code >= 300:
                    logger.warning("Sandbox: the status callback got HTTP %s", response.status_code)
            except httpx.HTTPError as exc:
                # A demo that cannot reach itself stays at "sent": say why in the server's log.
                logger.warning("Sandbox: could not post the status callback to %s: %s", url, exc)

    threading.Thread(target=run, name="sandbox-status", daemon=True).start()


def _post_status(webhook_url: str, secret: str, message_id, external_id: str, delay: float) -> None:
    body = json.dumps(
        {"type": "status", "message_id": message_id, "external_id": external_id, "status": "delivered"}
    ).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: "sha256=" + hmac_sha256_hex(secret, body),
    }
    _post_later(webhook_url, [(body, headers)], delay)


def _on() -> None:
    if not settings.HELPDESK_SANDBOX:
        raise Http404("The demo sandbox is off.")


def _fails(text) -> bool:
    return FAIL_MARKER in str(text or "").lower()


def _webhook_url(request, channel: Channel) -> str:
    # The webhook of the server that called us: the one the status belongs to,
    # whatever address the demo was started on.
    return request.build_absolute_uri(channel.webhook_path)


@csrf_exempt
@require_POST
def api_callback(request, key: str):
    """The API channel's callback receiver (channels_adapters/api/adapter.py, outbound)."""
    _on()
    channel = Channel.objects.filter(key=key, kind="api").first()
    if channel is None:
        raise Http404("No API channel has this key.")
    secret = channel.credentials.get("secret", "")
    try:
        check_prefixed_signature(request.headers.get(SIGNATURE_HEADER), hmac_sha256_hex(secret, request.body))
    except SignatureError as exc:
        return HttpResponse(f"Forbidden: {exc}", status=403, content_type="text/plain; charset=utf-8")
    try:
        payload = json.loads(request.body)
        message_id, text = payload["id"], str(payload.get("text") or "")
    except (ValueError, KeyError, TypeError):
        return HttpResponse(
            _("The demo sandbox expected the API channel's JSON reply."),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    if _fails(text):
        return HttpResponse(
            _("The demo sandbox refuses replies containing %(marker)s, as you asked.")
            % {"marker": FAIL_MARKER},
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    external_id = f"sandbox-{message_id}"
    delay = settings.HELPDESK_SANDBOX_DELIVERED_AFTER_SECONDS
    _post_status(_webhook_url(request, channel), secret, message_id, external_id, delay)
    return JsonResponse({"external_id": external_id})


# Meta Graph API (WhatsApp Cloud, Messenger) ---------------------------------------


def _meta_signed(channel: Channel, payload: dict) -> tuple[bytes, dict]:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac_sha256_hex(channel.credentials.get("app_secret", ""), body)
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


def _graph_error(code: int, message: str, status: int = 400) -> JsonResponse:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "sandbox"}
    return JsonResponse({"error": error}, status=status)


def _sandbox_channel(kinds: tuple[str, ...], **credentials) -> Channel | None:
    for channel in Channel.objects.filter(kind__in=kinds).order_by("pk"):
        creds = channel.credentials
        if all(str(creds.get(k) or "") == v for k, v in credentials.items()):
            return channel
    return None


@csrf_exempt
@require_POST
def graph(request, version: str, node: str):
    """POST /<version>/<phone_number_id>/messages (WhatsApp) and /<version>/me/messages (Messenger)."""
    _on()
    if request.headers.get("Authorization") != f"Bearer {SANDBOX_CREDENTIAL}":
        return _graph_error(190, "Invalid OAuth access token.", status=401)
    try:
        payload = json.loads(request.body)
    except ValueError:
        return _graph_error(100, "The request body is not JSON.")
    delay = settings.HELPDESK_SANDBOX_DELIVERED_AFTER_SECONDS
    if node == "me":
        channel = _sandbox_channel(("facebook", "instagram"), page_access_token=SANDBOX_CREDENTIAL)
        channel = channel or _sandbox_channel(("instagram",), access_token=SANDBOX_CREDENTIAL)
        if channel is None:
            raise Http404("No demo Messenger channel.")
        recipient = str((payload.get("recipient") or {}).get("id") or "")
        if _fails((payload.get("message") or {}).get("text")):
            return _graph_error(551, "This person isn't available right now.")
        mid = f"m_sandbox-{uuid.uuid4().hex}"
        page_id = str(channel.credentials.get("page_id") or channel.credentials.get("ig_account_id") or "")

        def delivered():
            at = int(time.time() * 1000)
            delivery = {
                "sender": {"id": recipient},
                "recipient": {"id": page_id},
                "timestamp": at,
                "delivery": {"mids": [mid], "watermark": at},
            }
            body = {
                "object": "page" if channel.kind == "facebook" else "instagram",
                "entry": [{"id": page_id, "time": at, "messaging": [delivery]}],
            }
            return _meta_signed(channel, body)

        _post_later(_webhook_url(request, channel), [delivered], delay)
        return JsonResponse({"recipient_id": recipient, "message_id": mid})
    channel = _sandbox_channel(("whatsapp",), phone_number_id=node, access_token=SANDBOX_CREDENTIAL)
    if channel is None:
        return _graph_error(100, f"Unsupported post request. Object with ID '{node}' does not exist.")
    recipient = str(payload.get("to") or "")
    if _fails((payload.get("text") or {}).get("body")):
        return _graph_error(131026, "Message undeliverable")
    wamid = f"wamid.sandbox-{uuid.uuid4().hex}"
    reference = payload.get("biz_opaque_callback_data")

    def delivered():
        status = {
            "id": wamid,
            "status": "delivered",
            "timestamp": str(int(time.time())),
            "recipient_id": recipient,
        }
        if reference:
            status["biz_opaque_callback_data"] = reference
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": recipient, "phone_number_id": node},
            "statuses": [status],
        }
        body = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "sandbox", "changes": [{"value": value, "field": "messages"}]}],
        }
        return _meta_signed(channel, body)

    _post_later(_webhook_url(request, channel), [delivered], delay)
    return JsonResponse(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": recipient, "wa_id": recipient}],
            "messages": [{"id": wamid}],
        }
    )


# Twilio Programmable Messaging (SMS) ---------------------------------------------


def _basic(user_password: str) -> str:
    return "Basic " + base64.b64encode(user_password.encode()).decode()


@csrf_exempt
@require_POST
def twilio_messages(request, account_sid: str):
    """POST /2010-04-01/Accounts/<sid>/Messages.json, then the signed StatusCallback."""
    _on()
    sender = request.POST.get("From", "")
    channel = _sandbox_channel(("sms",), account_sid=account_sid, phone_number=sender)
    expected = f"{account_sid}:{(channel.credentials if channel else {}).get('auth_token', '')}"
    if channel is None or request.headers.get("Authorization") != _basic(expected):
        error = {"code": 20003, "message": "Authenticate", "status": 401}
        return JsonResponse(error, status=401)
    if _fails(request.POST.get("Body")):
        error = {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}
        return JsonResponse(error, status=400)
    sid = "SM" + uuid.uuid4().hex
    to = request.POST.get("To", "")
    callback = request.POST.get("StatusCallback", "")
    if callback:
        validator = RequestValidator(channel.credentials.get("auth_token", ""))
        posts = []
        for status in ("sent", "delivered"):
            params = {
                "MessageSid": sid,
                "SmsSid": sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "AccountSid": account_sid,
                "From": sender,
                "To": to,
                "ApiVersion": "2010-04-01",
            }
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": validator.compute_signature(callback, params),
            }
            posts.append((urlencode(params).encode(), headers))
        _post_later(callback, posts, settings.HELPDESK_SANDBOX_DELIVERED_AFTER_SECONDS / 2)
    resource = message_resource(
        sid=sid, account_sid=account_sid, to=to, from_=sender, body=request.POST.get("Body", "")
    )
    return JsonResponse(resource, status=201)


# Telegram Bot API -------------------------------------------------------------


@csrf_exempt
@require_POST
def telegram(request, token: str, method: str):
    """POST /bot<token>/sendMessage, sendPhoto, sendDocument: answered as the Bot API does."""
    _on()
    if token != SANDBOX_CREDENTIAL:
        return JsonResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
    if request.content_type == "application/json":
        try:
            fields = json.loads(request.body)
        except ValueError:
            fields = {}
    else:
        fields = request.POST.dict()
    text = fields.get("text") or fields.get("caption") or ""
    if _fails(text):
        error = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        return JsonResponse(error, status=403)
    try:
        chat_id = int(fields.get("chat_id"))
    except (TypeError, ValueError):
        error = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        return JsonResponse(error, status=400)
    result = {
        "message_id": int(time.time() * 1000) % 2_000_000_000,
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private"},
        "from": {"id": 1, "is_bot": True, "first_name": "Demo", "username": "demo_help_bot"},
    }
    if method == "sendMessage":
        result["text"] = text
    elif text:
        result["caption"] = text
    return JsonResponse({"ok": True, "result": result})


urlpatterns = [
    path("api/<slug:key>/", api_callback, name="sandbox-api-callback"),
    path("graph/<str:version>/<str:node>/messages", graph, name="sandbox-graph"),
    path(
        "twilio/2010-04-01/Accounts/<str:account_sid>/Messages.json", twilio_messages, name="sandbox-twilio"
    ),
    re_path(r"^telegram/bot(?P<token>[^/]+)/(?P<method>send\w+)$", telegram, name="sandbox-telegram"),
]
