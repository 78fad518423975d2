import logging

from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from channels_adapters.base import SignatureError
from channels_adapters.registry import UnsupportedChannel, adapter_for
from channels_adapters.selectors import channel_get_active
from channels_adapters.services import inbound_event_store
from helpdesk.fields import EncryptionKeyError

logger = logging.getLogger(__name__)

# Providers retry a 503 (Meta, Twilio, Telegram...): once the operator fixes
# FIELD_ENCRYPTION_KEYS, nothing they sent meanwhile is lost.
RETRY_AFTER_SECONDS = 60


@csrf_exempt
def webhook(request, key: str):
    """Every provider's webhook: verify, store, acknowledge. Processing happens after."""
    try:
        channel = channel_get_active(key=key)
    except EncryptionKeyError:
        # Before anything is stored: the provider's retry is the only copy kept.
        logger.exception("Webhook %s refused with 503: channel credentials cannot be decrypted", key)
        return HttpResponse(
            _(
                "Service unavailable: this channel's credentials cannot be decrypted "
                "(FIELD_ENCRYPTION_KEYS is wrong or missing). Retry later."
            ),
            status=503,
            content_type="text/plain; charset=utf-8",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if channel is None:
        raise Http404("No active channel has this webhook URL.")
    try:
        adapter = adapter_for(channel.kind)
    except UnsupportedChannel as exc:
        raise Http404(str(exc)) from exc
    if request.method == "GET":
        return adapter.handshake(channel, request)
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    try:
        adapter.verify(channel, request)
    except SignatureError as exc:
        return HttpResponse(f"Forbidden: {exc}", status=403, content_type="text/plain")
    event = inbound_event_store(channel=channel, request=request)
    return adapter.acknowledge(channel, event)
