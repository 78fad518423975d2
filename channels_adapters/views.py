from django.http import Http404, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from channels_adapters.base import SignatureError
from channels_adapters.registry import UnsupportedChannel, adapter_for
from channels_adapters.selectors import channel_get_active
from channels_adapters.services import inbound_event_store


@csrf_exempt
def webhook(request, key: str):
    """Every provider's webhook: verify, store, acknowledge. Processing happens after."""
    channel = channel_get_active(key=key)
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
