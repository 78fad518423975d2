"""The widget's HTTP side: the loader script, the chat frame, and the visitor API.

Thin: each view reads the request, asks services or selectors, and answers
JSON in one error shape. The visitor token travels as a bearer header, never a
cookie, so these views need no CSRF token and a host site cannot ride on one.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from channels_adapters.models import ChannelKind
from channels_adapters.selectors import channel_get_active
from channels_adapters.webchat import selectors
from channels_adapters.webchat.config import LANGUAGES, limits, origin_allowed, origin_of_url, widget_config
from channels_adapters.webchat.presence import presence_touch
from channels_adapters.webchat.services import (
    Session,
    WidgetRefused,
    visitor_authenticate,
    visitor_details_submit,
    visitor_language,
    visitor_message_send,
    visitor_read,
    visitor_session_start,
    visitor_typing,
)
from channels_adapters.webchat.tokens import token_issue
from conversations.attachment_views import attachment_response
from helpdesk.login_lockout import client_ip

LONG_POLL_MAX_SECONDS = 25


def _channel(key: str):
    channel = channel_get_active(key=key)
    if channel is None or channel.kind != ChannelKind.WEBCHAT:
        raise Http404("No website chat has this key.")
    return channel


def _error(exc: WidgetRefused) -> JsonResponse:
    response = JsonResponse(
        {"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}}, status=exc.status
    )
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _bad_request(message: str) -> JsonResponse:
    return _error(WidgetRefused(message, code="invalid"))


def _json_body(request) -> dict:
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WidgetRefused(
            _("Your chat sent something we cannot read. Please reload the page."), code="invalid"
        ) from exc
    if not isinstance(data, dict):
        raise WidgetRefused(
            _("Your chat sent something we cannot read. Please reload the page."), code="invalid"
        )
    return data


def _bearer(request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _asked_language(request) -> str:
    if request.content_type == "application/json" and request.body:
        try:
            body = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("lang"), str):
            return body["lang"]
    return request.GET.get("lang", "")


def _check_request_origin(request, session: Session) -> None:
    """A browser names the page that made a request; only our frame (our origin) or an
    allowed site may use a visitor's token."""
    origin = request.headers.get("Origin")
    ours = (origin_of_url(settings.PUBLIC_BASE_URL), _own_origin(request))
    if origin and origin_of_url(origin) not in ours and not origin_allowed(session.config, origin):
        raise WidgetRefused(
            _("This website is not allowed to use this chat."), code="origin_not_allowed", status=403
        )


def _own_origin(request) -> str:
    return origin_of_url(f"{request.scheme}://{request.get_host()}")


def _session(request, channel) -> Session:
    session = visitor_authenticate(channel=channel, token=_bearer(request))
    _check_request_origin(request, session)
    return session


def _language(request, config) -> str:
    asked = (request.GET.get("lang") or "")[:2].lower()
    if asked in LANGUAGES:
        return asked
    from_browser = translation.get_language_from_request(request)[:2]
    return (
        from_browser
        if from_browser in LANGUAGES and request.headers.get("Accept-Language")
        else config.language
    )


def _page(data) -> dict:
    page = data.get("page")
    if isinstance(page, str):
        return {"url": page, "title": str(data.get("title") or "")}
    return page if isinstance(page, dict) else {}


def _state(channel, session: Session, *, after: int | None = None) -> dict:
    identity = session.identity
    case = selectors.visitor_case(channel=channel, identity=identity)
    messages = selectors.visitor_history(channel=channel, identity=identity, after=after)
    return {
        "messages": [selectors.message_json(m, visitor=session.visitor) for m in messages],
        "case": selectors.case_json(case),
        "seen_up_to": selectors.seen_up_to(channel=channel, identity=identity, case=case),
    }


def _visitor_json(session: Session) -> dict:
    identity = session.identity
    customer = identity.customer if identity is not None else None
    emails = phones = []
    if customer is not None:
        own = list(customer.identities.filter(kind__in=("email", "phone")).values_list("kind", "address"))
        emails = [a for k, a in own if k == "email"]
        phones = [a for k, a in own if k == "phone"]
    return {
        "verified": session.visitor.verified,
        # Only what the visitor told us themselves: never the linked customer's other details.
        "name": (identity.display_name or "") if identity is not None else "",
        "has_email": bool(emails),
        "has_phone": bool(phones),
        "prechat_done": identity is not None,
    }


# The loader and the frame ---------------------------------------------------------


@require_GET
def loader(request, key: str):
    channel = _channel(key)
    config = widget_config(channel)
    page_origin = origin_of_url(request.headers.get("Origin") or request.headers.get("Referer"))
    if page_origin and not origin_allowed(config, page_origin):
        # Browsers name the embedding page on a script load: a site not on the list gets no chat.
        return HttpResponse(
            "/* " + _("This website is not allowed to use this chat.") + " */",
            status=403,
            content_type="text/javascript; charset=utf-8",
        )
    with translation.override(_language(request, config)):
        data = {
            "key": channel.key,
            "frame_url": settings.PUBLIC_BASE_URL + f"/widget/{channel.key}/frame/",
            "color": config.color,
            "position": config.position,
            "label": _("Chat with us"),
            "close_label": _("Close the chat"),
            "language": config.language,
        }
        # </script> or a line separator in a greeting must not end the script.
        config_json = (
            json.dumps(data)
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
        body = render_to_string("webchat/loader.js", {"config_json": config_json}, request=request)
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "private, max-age=60"
    response["Vary"] = "Referer, Origin, Accept-Language"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@xframe_options_exempt
def frame(request, key: str):
    channel = _channel(key)
    config = widget_config(channel)
    origin = origin_of_url(request.GET.get("origin"))
    referer = origin_of_url(request.headers.get("Referer"))
    # The embedding page is named twice (the loader's parameter, the browser's Referer):
    # both must be on the list; frame-ancestors below has the browser enforce it too.
    allowed = origin_allowed(config, origin) and (
        not referer or referer == origin or origin_allowed(config, referer)
    )
    language = _language(request, config)
    with translation.override(language):
        if not allowed:
            response = HttpResponse(
                _("This website is not allowed to use this chat."),
                status=403,
                content_type="text/plain; charset=utf-8",
            )
            response["Content-Security-Policy"] = "frame-ancestors 'none'"
            return response
        from channels_adapters.webchat.strings import widget_strings

        context = {
            "config": {
                "key": channel.key,
                "api": f"/widget/{channel.key}/api/",
                "ws_path": f"/ws/widget/{channel.key}/",
                "color": config.color,
                "greeting": config.greeting_for(language),
                "position": config.position,
                "prechat": config.prechat,
                "require_verification": config.require_verification,
                "language": language,
                "origin": origin,
                **limits(),
            },
            "strings": widget_strings(),
        }
        response = render(request, "webchat/frame.html", context)
    ancestors = " ".join(config.allowed_origins) or "'none'"
    response["Content-Security-Policy"] = (
        f"frame-ancestors {ancestors}; default-src 'self'; img-src 'self' data: blob:; "
        "style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'"
    )
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


# The visitor API ------------------------------------------------------------------


def _api(view):
    """JSON in, JSON out, one error shape, in the visitor's language, for every visitor endpoint."""

    def wrapped(request, key, *args, **kwargs):
        try:
            channel = _channel(key)
        except Http404:
            return JsonResponse(
                {"error": {"code": "not_found", "message": _("This chat does not exist."), "fields": {}}},
                status=404,
            )
        with translation.override(visitor_language(channel, _bearer(request), _asked_language(request))):
            try:
                return view(request, channel, *args, **kwargs)
            except WidgetRefused as exc:
                return _error(exc)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return csrf_exempt(wrapped)


@require_POST
@_api
def session_start(request, channel):
    data = _json_body(request)
    origin = origin_of_url(str(data.get("origin") or ""))
    session = visitor_session_start(
        channel=channel,
        token=str(data.get("token") or "") or None,
        origin=origin,
        user=data.get("user") if isinstance(data.get("user"), dict) else None,
        user_hash=str(data.get("hash") or "") or None,
        page=_page(data),
        ip=client_ip(request) or "",
    )
    _check_request_origin(request, session)
    config = session.config
    visitor = replace(session.visitor, language=translation.get_language()[:2])
    return JsonResponse(
        {
            "token": token_issue(visitor),
            "visitor": _visitor_json(session),
            "availability": selectors.availability(config=config),
            **_state(channel, session),
        }
    )


def _messages_post(request, channel):
    session = _session(request, channel)
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limits()["max_attachment_bytes"] + 256 * 1024:
        # Refused before the body is read: an oversized upload costs us nothing.
        raise WidgetRefused(
            _("That file is too large (the limit is %(mb)s MB).")
            % {"mb": round(limits()["max_attachment_bytes"] / 1048576, 1)},
            code="too_large",
            status=413,
        )
    if request.content_type == "multipart/form-data":
        data, upload = request.POST, request.FILES.get("file")
        page = {"url": data.get("page", ""), "title": data.get("title", "")}
    else:
        data, upload = _json_body(request), None
        page = _page(data)
    message, _created = visitor_message_send(
        session=session,
        channel=channel,
        client_id=str(data.get("client_id") or ""),
        text=str(data.get("text") or ""),
        upload=upload,
        page=page,
        user_agent=request.headers.get("User-Agent", ""),
        time_zone=str(data.get("tz") or ""),
        ip=client_ip(request) or "",
    )
    return JsonResponse({"message": selectors.message_json(message, visitor=session.visitor)}, status=201)


def _messages_get(request, channel):
    session = _session(request, channel)
    after = request.GET.get("after", "")
    presence_touch(address=session.visitor.address)
    return session, _state(channel, session, after=int(after) if after.isdigit() else None)


@csrf_exempt
@require_http_methods(["GET", "POST"])
async def messages(request, key: str):
    """POST: the visitor writes. GET: what is new since `after`; with `wait`, a long-poll
    that answers as soon as anything reaches the visitor (the fallback without WebSockets)."""
    try:
        channel = await sync_to_async(_channel)(key)
    except Http404:
        return JsonResponse(
            {"error": {"code": "not_found", "message": _("This chat does not exist."), "fields": {}}},
            status=404,
        )
    language = await sync_to_async(visitor_language)(channel, _bearer(request), request.GET.get("lang", ""))
    with translation.override(language):
        return await _messages(request, channel)


async def _messages(request, channel):
    try:
        if request.method == "POST":
            return await sync_to_async(_messages_post)(request, channel)
        session, state = await sync_to_async(_messages_get)(request, channel)
        wait = request.GET.get("wait", "")
        wait = min(int(wait), LONG_POLL_MAX_SECONDS) if wait.isdigit() else 0
        if wait and not state["messages"] and await _wait_for_visitor_event(session.visitor.group, wait):
            _session_again, state = await sync_to_async(_messages_get)(request, channel)
        return JsonResponse(state)
    except WidgetRefused as exc:
        return _error(exc)


async def _wait_for_visitor_event(group: str, seconds: float) -> bool:
    layer = get_channel_layer()
    if layer is None:
        await asyncio.sleep(seconds)
        return False
    name = await layer.new_channel()
    await layer.group_add(group, name)
    try:
        await asyncio.wait_for(layer.receive(name), timeout=seconds)
        return True
    except TimeoutError:
        return False
    finally:
        await layer.group_discard(group, name)


@require_POST
@_api
def prechat(request, channel):
    session = _session(request, channel)
    data = _json_body(request)
    session = visitor_details_submit(
        session=session,
        name=str(data.get("name") or ""),
        email=str(data.get("email") or ""),
        phone=str(data.get("phone") or ""),
        ip=client_ip(request) or "",
    )
    return JsonResponse({"visitor": _visitor_json(session)})


@require_POST
@_api
def typing(request, channel):
    session = _session(request, channel)
    data = _json_body(request)
    visitor_typing(session=session, channel=channel, typing=bool(data.get("typing", True)))
    return HttpResponse(status=204)


@require_POST
@_api
def read(request, channel):
    session = _session(request, channel)
    data = _json_body(request)
    up_to = data.get("up_to")
    if not isinstance(up_to, int) or isinstance(up_to, bool):
        return _bad_request(_("Your chat sent something we cannot read. Please reload the page."))
    visitor_read(session=session, channel=channel, up_to=up_to)
    return HttpResponse(status=204)


@require_GET
def attachment(request, key: str, message_id: int, index: int):
    """A file of the visitor's conversation, by the signed link each message carries."""
    channel = _channel(key)
    record = selectors.visitor_attachment(
        channel=channel, token=request.GET.get("t", ""), message_id=message_id, index=index
    )
    if record is None:
        raise Http404(_("No such attachment."))
    return attachment_response(request, record)
