"""Files customers send us (or we fetch from a provider) kept with Django's storage."""

import mimetypes
import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.text import get_valid_filename


def attachment_save(*, content: bytes, name: str = "", content_type: str = "") -> dict:
    """Store the bytes and return the attachment record kept on Message.attachments."""
    content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if not name:
        name = "file" + (mimetypes.guess_extension(content_type) or "")
    safe = get_valid_filename(name)[:100] or "file"
    path = default_storage.save(
        f"attachments/{timezone.now():%Y/%m/%d}/{uuid.uuid4().hex}/{safe}", ContentFile(content)
    )
    return {
        "url": default_storage.url(path),
        "path": path,
        "name": name,
        "content_type": content_type,
        "size": len(content),
    }


# Serving stored files --------------------------------------------------------------
#
# Stored attachments are never public (/media/ is not served): agents fetch them
# through an authorized view that asks conversations.visibility, one URL per
# (message, index in Message.attachments).

# Types a browser may show inline on our origin. Anything else (HTML, SVG, XML,
# scripts...) is sent as a download: a customer's file must never run as a page
# of the helpdesk with the agent's session.
INLINE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "audio/webm",
        "audio/mp4",
        "audio/aac",
        "audio/amr",
        "video/mp4",
        "video/webm",
        "video/ogg",
        "video/quicktime",
    }
)


def attachment_url(*, message_id: int, index: int) -> str:
    from django.urls import reverse

    return reverse("inbox:attachment", args=[message_id, index])


def attachment_stored(attachment) -> dict | None:
    """The attachment record if its bytes are in our storage (it has a path), else None."""
    if isinstance(attachment, dict) and attachment.get("path"):
        return attachment
    return None


def attachment_of(message, index: int) -> dict | None:
    """The stored attachment at `index` of a message, else None."""
    attachments = message.attachments or []
    return attachment_stored(attachments[index]) if 0 <= index < len(attachments) else None


def attachment_inline(content_type: str) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in INLINE_TYPES
