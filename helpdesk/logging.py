"""Logging pieces for settings.LOGGING."""

import logging


class NoTracebackBelow500(logging.Filter):
    """An ordinary 4xx (a 403 for a page the user may not see) is one line, not a traceback.

    Django logs a PermissionDenied or a 404 with the exception attached; the
    traceback of an expected refusal only buries the real errors (5xx keep theirs).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.name.startswith("django.request") and status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
