"""A stand-in provider for the demo: the seeded API channel's replies land here.

`make run` (the embedded default) has no shop backend to send replies to, so
the API channel's callback_url points at this view and a reply goes through the
real adapter and the real webhook: the sandbox checks the signature like any
receiver would, accepts the reply, and a moment later posts the channel's
signed "delivered" status callback, so a new user watches queued -> sent ->
delivered. A reply containing "#fail" is refused (HTTP 400) so the failure path
can be seen on purpose, and only then.

In eager mode the reply's own request waits on this callback, served by the
same server: that needs a second request thread (ASGI_REQUEST_THREADS, 4 by
default; runserver threads too), and the status callback is posted from a
thread after we answer so nothing waits on itself.

Mounted only while settings.HELPDESK_SANDBOX is on (DEBUG's default); production
refuses to start with it on (helpdesk/settings.py, production_problems).
"""

from __future__ import annotations

import json
import logging
import threading
import time

import httpx
from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels_adapters.api.adapter import SIGNATURE_HEADER
from channels_adapters.base import SignatureError, check_prefixed_signature, hmac_sha256_hex
from channels_adapters.models import Channel

logger = logging.getLogger(__name__)

FAIL_MARKER = "#fail"


def sandbox_callback_url(channel: Channel) -> str:
    """Where a demo API channel sends its replies: this app, at its public address."""
    return settings.PUBLIC_BASE_URL + reverse("sandbox-api-callback", kwargs={"key": channel.key})


def _post_status(webhook_url: str, secret: str, message_id, external_id: str, delay: float) -> None:
    # In a thread, after the callback has answered: in eager mode the reply's
    # request is still waiting on our answer, and the webhook it would need is
    # served by the same process; posting before answering could starve it.
    time.sleep(delay)
    body = json.dumps(
        {"type": "status", "message_id": message_id, "external_id": external_id, "status": "delivered"}
    ).encode()
    try:
        response = httpx.post(
            webhook_url,
            content=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: "sha256=" + hmac_sha256_hex(secret, body),
            },
            timeout=settings.HELPDESK["HTTP_TIMEOUT_SECONDS"],
        )
        if response.status_code >= 300:
            logger.warning("Sandbox: the status callback got HTTP %s", response.status_code)
    except httpx.HTTPError as exc:
        # A demo that cannot reach itself stays at "sent": say why in the server's log.
        logger.warning("Sandbox: could not post the status callback to %s: %s", webhook_url, exc)


@csrf_exempt
@require_POST
def api_callback(request, key: str):
    """The API channel's callback receiver (channels_adapters/api/adapter.py, outbound)."""
    if not settings.HELPDESK_SANDBOX:
        raise Http404("The demo sandbox is off.")
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
    if FAIL_MARKER in text.lower():
        return HttpResponse(
            _("The demo sandbox refuses replies containing %(marker)s, as you asked.")
            % {"marker": FAIL_MARKER},
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    external_id = f"sandbox-{message_id}"
    # The webhook of the server that called us: the one the status belongs to,
    # whatever address the demo was started on.
    webhook_url = request.build_absolute_uri(channel.webhook_path)
    delay = settings.HELPDESK_SANDBOX_DELIVERED_AFTER_SECONDS
    threading.Thread(
        target=_post_status,
        args=(webhook_url, secret, message_id, external_id, delay),
        name=f"sandbox-status-{message_id}",
        daemon=True,
    ).start()
    return JsonResponse({"external_id": external_id})


urlpatterns = [path("api/<slug:key>/", api_callback, name="sandbox-api-callback")]
