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
