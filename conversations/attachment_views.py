"""Stored attachments, served only to the agents allowed to see their message."""

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from conversations.attachments import attachment_inline, attachment_of
from conversations.models import Message
from conversations.views import agent_required
from conversations.visibility import message_visible

CHUNK_BYTES = 64 * 1024


async def _chunks(handle):
    # Under ASGI (uvicorn, and runserver through daphne) a sync file iterator
    # would be read whole into memory first, with a warning: read it in chunks
    # off the event loop instead.
    read = sync_to_async(handle.read, thread_sensitive=False)
    while chunk := await read(CHUNK_BYTES):
        yield chunk


@require_GET
@agent_required
def attachment_download(request, message_id: int, index: int):
    message = get_object_or_404(Message.objects.select_related("case"), pk=message_id)
    # 404, not 403, for a message the user may not see: the URL says nothing about it.
    if not message_visible(user=request.user, message=message):
        raise Http404(_("No such attachment."))
    record = attachment_of(message, index)
    if record is None:
        raise Http404(_("No such attachment."))
    return attachment_response(request, record)


def attachment_response(request, record: dict):
    """A stored attachment as a response that can never run as a page of ours."""
    try:
        handle = default_storage.open(record["path"], "rb")
    except (FileNotFoundError, OSError) as exc:
        raise Http404(_("The file of this attachment is missing.")) from exc
    content_type = record.get("content_type") or "application/octet-stream"
    response = FileResponse(
        handle,
        content_type=content_type,
        as_attachment=not attachment_inline(content_type),
        filename=record.get("name") or "attachment",
    )
    if isinstance(request, ASGIRequest):
        # Headers (length, disposition) stay FileResponse's; the file is still closed with the response.
        response.streaming_content = _chunks(handle)
    response["X-Content-Type-Options"] = "nosniff"
    # Even shown inline, the file is a document of its own: no script, no
    # requests, no access to the helpdesk's origin.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
    # Not kept by the browser: who may see the case can change (it moves to another team).
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
