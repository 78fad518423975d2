"""Files an agent attaches to a reply: which channels can carry them, checked before
anything is stored, then saved with the attachments storage and sent with the message
through the usual outbound path (the adapter reads Message.attachments)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations.attachments import attachment_save

# Channels whose adapter sends a stored file itself (email attaches the bytes, Telegram
# uploads them, the web chat hands the visitor a signed link, the API channel passes the
# record on). None: any type. Meta, Twilio and X would have the provider fetch the file
# from a public URL, which we do not serve (docs/deploy.md): no files there yet.
# An adapter may say it itself with an `outbound_attachment_types` attribute.
_SENDS_FILES = {"email": None, "telegram": None, "api": None, "webchat": "WEBCHAT_ATTACHMENT_TYPES"}
MAX_FILES = 5


def reply_file_types(channel) -> tuple[bool, list[str] | None]:
    """(whether this channel can send files, the allowed content types or None for any)."""
    try:
        adapter = adapter_for(channel.kind)
    except UnsupportedChannel:
        return False, None
    if hasattr(adapter, "outbound_attachment_types"):
        types = adapter.outbound_attachment_types
        return types is not False, (list(types) if types not in (None, False, True) else None)
    if channel.kind not in _SENDS_FILES:
        return False, None
    setting = _SENDS_FILES[channel.kind]
    return True, (list(settings.HELPDESK[setting]) if setting else None)


def reply_max_bytes() -> int:
    return settings.HELPDESK["REPLY_MAX_ATTACHMENT_BYTES"]


def reply_files_check(*, channel, files) -> None:
    """Every problem with the chosen files in one sentence each, before anything is kept."""
    if not files:
        return
    if channel is None:
        raise ValidationError(_("Choose the channel to send the files on."))
    sends, types = reply_file_types(channel)
    if not sends:
        raise ValidationError(
            _("%(channel)s cannot send files from the helpdesk yet: send a link instead.")
            % {"channel": channel.name}
        )
    if len(files) > MAX_FILES:
        raise ValidationError(_("At most %(n)d files per reply.") % {"n": MAX_FILES})
    limit = reply_max_bytes()
    problems = []
    for f in files:
        content_type = (f.content_type or "").split(";")[0].strip().lower()
        if f.size > limit:
            problems.append(
                _("%(name)s is %(size)s: the limit is %(limit)s.")
                % {"name": f.name, "size": filesizeformat(f.size), "limit": filesizeformat(limit)}
            )
        elif types is not None and content_type not in types:
            problems.append(
                _("%(name)s (%(type)s) cannot be sent on %(channel)s.")
                % {"name": f.name, "type": content_type or _("unknown type"), "channel": channel.name}
            )
    if problems:
        raise ValidationError(problems)


def reply_files_save(*, files) -> list[dict]:
    """The attachment records kept on the reply, after reply_files_check said yes."""
    return [
        attachment_save(content=f.read(), name=f.name, content_type=(f.content_type or "").split(";")[0])
        for f in files
    ]


def attachments_discard(attachments: list[dict]) -> None:
    """Remove stored files of a reply that was refused after they were saved."""
    from django.core.files.storage import default_storage

    for a in attachments:
        if a.get("path"):
            default_storage.delete(a["path"])
