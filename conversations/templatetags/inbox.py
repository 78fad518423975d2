"""Template helpers of the agent inbox: safe rendering of what customers send."""

import re
from datetime import datetime
from functools import lru_cache
from html import escape as _esc
from html import unescape as _unescape
from urllib.parse import urlsplit

import nh3
from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

register = template.Library()

# kind -> (short badge text, accessible name)
CHANNEL_BADGES = {
    "api": ("API", "API"),
    "email": ("✉", "Email"),
    "facebook": ("FB", "Facebook Messenger"),
    "instagram": ("IG", "Instagram"),
    "whatsapp": ("WA", "WhatsApp"),
    "whatsapp_twilio": ("WA", "WhatsApp"),
    "whatsapp_bsuid": ("WA", gettext_lazy("WhatsApp user ID")),
    "twitter": ("X", "X / Twitter"),
    "sms": ("SMS", "SMS"),
    "voice": ("☎", "Phone"),
    "phone": ("☎", "Phone number"),
    "telegram": ("TG", "Telegram"),
    "webchat": ("💬", "Website chat"),
}

STATUS_MARKS = {
    "queued": ("🕓", gettext_lazy("Queued")),
    "sent": ("✓", gettext_lazy("Sent")),
    "delivered": ("✓✓", gettext_lazy("Delivered")),
    "read": ("✓✓", gettext_lazy("Read")),
    "failed": ("⚠", gettext_lazy("Failed")),
    "unknown": ("❓", gettext_lazy("May have been sent")),
}


@register.simple_tag
def channel_badge(kind):
    return _badge(kind or "", get_language())


@register.simple_tag
def delivery_status(status):
    return _status(status or "", get_language())


@lru_cache(maxsize=64)
def _badge(kind: str, language: str | None = None) -> SafeString:
    # `language` is part of the cache key, as for _status: some names are translated.
    # A handful of kinds, rendered once each and reused for every message.
    if not kind:
        return format_html('<span class="badge ch-none" title="{0}" aria-label="{0}">•</span>', "Internal")
    text, name = CHANNEL_BADGES.get(kind, (kind[:3].upper(), kind))
    return format_html(
        '<span class="badge ch-{}" title="{}" role="img" aria-label="{}">{}</span>', kind, name, name, text
    )


@lru_cache(maxsize=64)
def _status(status: str, language: str | None = None) -> SafeString:
    # `language` is part of the cache key: a label rendered in one language is not served in another.
    if not status:
        return SafeString("")
    mark, label = STATUS_MARKS.get(status, ("", status))
    return format_html(
        '<span class="dstatus ds-{}" data-status="{}">{} {}</span>', status, status, mark, label
    )


# Remote images in customer email are tracking pixels as often as pictures: the
# sanitized HTML keeps their address in data-remote-src and requests nothing
# until the agent clicks "Load remote images" (static/inbox/inbox.js).
# nh3's serializer always double-quotes attribute values and escapes '"' inside
# them, and escapes '<' in text, so these patterns only ever match real tags.
_IMG_TAG = re.compile(r'<img(?:\s+[^\s=>"/]+(?:="[^"]*")?)*\s*/?>')
# One attribute of such a tag, walked in order: a value (quoted, never holding
# '"') is never searched for a name, so text like alt="a src=" stays text.
_TAG_ATTR = re.compile(r'(\s+)([^\s=>"/]+)(?:="([^"]*)")?')
REMOTE_SRC_ATTR = "data-remote-src"


def email_html_sanitize(value: str, *, stored: dict[str, str] | None = None) -> tuple[str, bool]:
    """Email HTML through nh3, every remote <img> deferred; also says whether any was.

    `stored` maps the URLs of images we keep (inline `cid:` parts) to the
    authorized URL they are served from: those show at once, they tell no sender."""
    if not value:
        return "", False
    stored = stored or {}
    cleaned = nh3.clean(value, link_rel="noopener noreferrer nofollow")
    deferred_any = False

    def img(match: re.Match) -> str:
        nonlocal deferred_any
        done = False

        def attr(a: re.Match) -> str:
            nonlocal done, deferred_any
            space, name, quoted = a.group(1), a.group(2), a.group(3)
            if done or name.lower() != "src" or quoted is None:
                return a.group(0)
            done = True
            local = stored.get(_unescape(quoted))
            if local is not None:
                return format_html('{}src="{}"', space, local)
            deferred_any = True
            return f'{space}referrerpolicy="no-referrer" {REMOTE_SRC_ATTR}="{quoted}"'

        tag = match.group(0)
        return "<img" + _TAG_ATTR.sub(attr, tag[len("<img") :])

    return _IMG_TAG.sub(img, cleaned), deferred_any


@register.filter
def clean_html(value):
    """Email HTML through nh3 at render time too: even a row written by an older
    version or by hand can never run script in an agent's browser, nor load a
    remote image before the agent asks."""
    return mark_safe(email_html_sanitize(value)[0])  # noqa: S308


# Browsers drop these anywhere in a URL, and read a backslash as a slash in
# http(s) URLs: "/\\evil.example/x" and "/\t/evil.example" both go off-site.
_URL_IGNORED = str.maketrans("", "", "\t\n\r")


@register.filter
def safe_url(value):
    """Only web and same-site links: a `javascript:` URL from a payload is dropped,
    and so is anything a browser would read as another host ("//", "/\\")."""
    value = (value or "").strip().translate(_URL_IGNORED)
    if not value or any(ord(ch) < 0x20 for ch in value):
        return ""
    normalized = value.replace("\\", "/")
    parts = urlsplit(normalized)
    if parts.scheme.lower() in ("http", "https"):
        return normalized if parts.netloc else ""
    if parts.scheme or parts.netloc or normalized.startswith("//"):
        return ""
    # Storage URLs may be relative to the site root ("media/...").
    return normalized if normalized.startswith("/") else "/" + normalized


@register.filter
def duration(seconds):
    try:
        seconds = int(seconds)
    except (TypeError, ValueError):
        return ""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@register.filter
def waited(since: datetime | None):
    """Short waiting time ('3 min', '2 h 5 min', '4 d'); JS keeps it current."""
    if not since:
        return ""
    seconds = max(0, int((timezone.now() - since).total_seconds()))
    if seconds < 60:
        return "<1 min"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


@register.filter
def attachment_kind(attachment):
    content_type = (attachment or {}).get("content_type", "") if isinstance(attachment, dict) else ""
    for prefix in ("image", "audio", "video"):
        if content_type.startswith(prefix + "/"):
            return prefix
    return "file"


@register.filter
def is_supervisor(user):
    from helpdesk.roles import user_is_supervisor

    return user_is_supervisor(user)


@register.filter
def is_admin(user):
    from helpdesk.roles import user_is_admin

    return user_is_admin(user)


@register.filter
def person(user):
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@register.simple_tag
def agent_options(agents, selected_id):
    """The assignee select's options: 80 agents through the template's loop cost a
    millisecond and a half of every case page."""
    option = '<option value="{}" {}>{}</option>'
    rows = (_fmt(option, a.pk, "selected" if a.pk == selected_id else "", person(a)) for a in agents)
    return mark_safe("".join(rows))


# One message of the timeline ------------------------------------------------------
#
# Rendered in Python rather than with an {% include %} per message: a thread of
# hundreds of messages renders in a few milliseconds instead of a hundred. The
# same function serves the full page and the live fragments. Everything that
# comes from a customer or a provider goes through escape()/_fmt().


def _when(value, tz=None) -> str:
    local = value.astimezone(tz) if tz is not None else timezone.localtime(value)
    return f"{local:%b} {local.day}, {local:%H:%M}"


def _fmt(template: str, *args) -> SafeString:
    """format_html without its lazy-string bookkeeping: hundreds of calls per thread."""
    return SafeString(template.format(*(a if isinstance(a, SafeString) else _esc(str(a)) for a in args)))


def _text(value: str) -> SafeString:
    return SafeString(_esc(value or "").replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>"))


def _call_html(m) -> str:
    meta = m.meta or {}
    if m.kind == "voicemail":
        title = "Voicemail"
    elif meta.get("direction") == "outbound" or m.direction == "out":
        title = "Outbound call"
    else:
        title = "Inbound call"
    facts = []
    if meta.get("talk_seconds"):
        facts.append(duration(meta["talk_seconds"]))
    elif meta.get("recording_seconds"):
        facts.append(duration(meta["recording_seconds"]))
    if meta.get("call_status"):
        facts.append(str(meta["call_status"]))
    parts = [_fmt("<p><strong>{}</strong>{}", title, "".join(f" · {f}" for f in facts))]
    if meta.get("answered") is False:
        parts.append(mark_safe(' · <span class="missed">not answered</span>'))
    parts.append(mark_safe("</p>"))
    if m.body:
        parts.append(_fmt('<p class="text">{}</p>', _text(m.body)))
    url = safe_url(meta.get("recording_url"))
    if url:
        parts.append(
            _fmt(
                '<audio controls preload="none" src="{}" aria-label="Recording"></audio> '
                '<a href="{}" rel="noopener noreferrer" target="_blank">Recording</a>',
                url,
                url,
            )
        )
    if meta.get("transcript"):
        parts.append(
            _fmt(
                '<details><summary>Transcript</summary><p class="transcript">{}</p></details>',
                _text(str(meta["transcript"])),
            )
        )
    return _fmt('<div class="call">{}</div>', mark_safe("".join(parts)))


def _attachments_html(attachments, *, message_id: int) -> str:
    from conversations.attachments import attachment_stored, attachment_url

    items = []
    for index, a in enumerate(attachments):
        if not isinstance(a, dict):
            continue
        name = a.get("name") or "attachment"
        # Files in our storage go through the authorized view, never /media/.
        if attachment_stored(a):
            url = attachment_url(message_id=message_id, index=index)
        else:
            url = safe_url(a.get("url"))
        if not url:
            items.append(_fmt("<li>📎 {}</li>", name))
            continue
        kind = attachment_kind(a)
        preview = ""
        if kind == "image":
            preview = _fmt(
                '<a href="{}" target="_blank" rel="noopener noreferrer">'
                '<img src="{}" alt="{}" loading="lazy"></a>',
                url,
                url,
                a.get("name") or "Image attachment",
            )
        elif kind in ("audio", "video"):
            preview = _fmt(
                '<{} controls preload="none" src="{}" aria-label="{}"></{}>', kind, url, name, kind
            )
        items.append(
            _fmt(
                '<li>{}<a href="{}" target="_blank" rel="noopener noreferrer">📎 {}</a></li>',
                preview,
                url,
                name,
            )
        )
    return _fmt('<ul class="attachments" aria-label="Attachments">{}</ul>', mark_safe("".join(items)))


def _author(m, customer) -> str:
    if m.direction == "in":
        identity = m.identity
        return (identity.display_name if identity else "") or str(customer or "Customer")
    if m.author_user is not None:
        return person(m.author_user)
    return "Automation" if m.author == "bot" else "Us"


def _retry_form(m, csrf_token: str, *, css: str, title, reason, button, confirm=None) -> str:
    """A message's send problem in words, with the button that queues it again."""
    from django.urls import reverse

    return _fmt(
        '<div class="{}" role="alert"><p><strong>{}</strong> {}</p>'
        '<form method="post" action="{}" data-ajax{}>'
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
        '<button type="submit">{}</button></form></div>',
        css,
        title,
        reason,
        reverse("inbox:message_retry", args=[m.pk]),
        format_html(' data-confirm="{}"', confirm) if confirm else "",
        csrf_token,
        button,
    )


def _stored_image_urls(m) -> dict[str, str]:
    """Inline images of this email that we store, by the URL its HTML names them by."""
    from conversations.attachments import attachment_stored, attachment_url

    return {
        a["url"]: attachment_url(message_id=m.pk, index=i)
        for i, a in enumerate(m.attachments or [])
        if attachment_stored(a) and a.get("url")
    }


def message_html(m, customer, csrf_token: str, *, language=None, tz=None) -> str:
    """`language` and `tz`: the page's, when the caller renders many messages."""
    if tz is None:
        tz, language = timezone.get_current_timezone(), get_language()
    case = m.case_id or ""
    if m.kind == "system":
        return _fmt(
            '<li id="m-{}" data-message="{}" data-case="{}" class="msg system {}">'
            '<p class="system-line"><span class="sr-only">Event: </span>{} '
            '<time datetime="{}">{}</time></p></li>',
            m.pk,
            m.pk,
            case,
            m.direction,
            m.body,
            m.created_at.isoformat(),
            _when(m.created_at, tz),
        )
    meta = m.meta or {}
    classes = f"msg {m.kind} {m.direction}" + (" bot" if m.author == "bot" else "")
    classes += {"failed": " failed", "unknown": " outcome-unknown"}.get(m.status or "", "")
    channel = m.channel
    head = [
        mark_safe('<span class="badge note-badge">Internal note</span>')
        if m.kind == "note"
        else _badge(channel.kind if channel else "", language),
        _fmt('<span class="author">{}</span>', _author(m, customer)),
    ]
    if channel is not None:
        head.append(_fmt('<span class="via">via {}</span>', channel.name))
    head.append(_fmt('<time datetime="{}">{}</time>', m.created_at.isoformat(), _when(m.created_at, tz)))
    if m.direction == "out" and m.kind != "note":
        head.append(_status(m.status or "", language))
    if meta.get("echo"):
        head.append(mark_safe('<span class="echo" title="Sent from the provider\'s own app">echo</span>'))
    body = []
    if m.kind in ("call", "voicemail"):
        body.append(_call_html(m))
    else:
        if meta.get("subject"):
            body.append(_fmt('<p class="subject">{}</p>', meta["subject"]))
        if m.html:
            html, deferred = email_html_sanitize(m.html, stored=_stored_image_urls(m))
            if deferred:
                body.append(
                    _fmt(
                        '<p class="remote-images"><button type="button" data-load-images>{}</button> {}</p>',
                        _("Load remote images"),
                        _("Remote images are blocked: they can tell the sender you read this."),
                    )
                )
            body.append(_fmt('<div class="email-html">{}</div>', SafeString(html)))
        else:
            body.append(_fmt('<p class="text">{}</p>', _text(m.body)))
    if meta.get("full_text") and m.kind not in ("call", "voicemail"):
        # A reply shows its new words; the history it quoted is one click away.
        body.append(
            _fmt(
                '<details class="full-message"><summary>{}</summary><p class="text">{}</p></details>',
                _("Show the quoted history"),
                _text(str(meta["full_text"])),
            )
        )
    template = meta.get("template")
    if isinstance(template, dict):
        body.append(
            _fmt(
                '<p class="template-note">WhatsApp template “{}” ({})</p>',
                template.get("name", ""),
                template.get("language", ""),
            )
        )
    if m.attachments:
        body.append(_attachments_html(m.attachments, message_id=m.pk))
    edits = meta.get("edits")
    if isinstance(edits, list) and edits:
        olds = "".join(_fmt("<p><del>{}</del></p>", e.get("text", "")) for e in edits if isinstance(e, dict))
        body.append(_fmt('<details class="edits"><summary>edited</summary>{}</details>', mark_safe(olds)))
    if meta.get("revoked"):
        # The words stay for the agent (a promise or a question still counts), marked as
        # taken back: the customer no longer sees them in WhatsApp.
        classes += " revoked"
        by_customer = meta.get("revoked_by", "customer") == "customer"
        label = _("Deleted by the customer") if by_customer else _("Deleted from the WhatsApp Business app")
        body.append(_fmt('<p class="revoked-note" role="note">🗑 {}</p>', label))
    if m.status == "failed":
        body.append(
            _retry_form(
                m,
                csrf_token,
                css="send-error",
                title=_("Not sent:"),
                reason=m.error or _("the provider refused the message."),
                button=_("Retry"),
            )
        )
    elif m.status == "unknown":
        # Not a failure: the provider may have it. Sending again asks first (inbox.js
        # shows data-confirm; without it the server refuses an unconfirmed resend).
        body.append(
            _retry_form(
                m,
                csrf_token,
                css="send-unknown",
                title=_("May have been sent:"),
                reason=m.error or _("the send was interrupted and its outcome is unknown."),
                button=_("Send again…"),
                confirm=_(
                    "The customer may already have this message. Send it again anyway? "
                    "They could receive it twice."
                ),
            )
        )
    elif m.status == "queued" and m.error:
        body.append(_fmt('<p class="retrying">{}</p>', m.error))
    return _fmt(
        '<li id="m-{}" data-message="{}" data-case="{}" class="{}"><div class="bubble">'
        '<header class="msg-head">{}</header>{}</div></li>',
        m.pk,
        m.pk,
        case,
        classes,
        mark_safe(" ".join(str(h) for h in head)),
        mark_safe("".join(str(b) for b in body)),
    )


@register.simple_tag(takes_context=True)
def timeline_items(context, messages, customer):
    """The timeline's <li>s: a boundary line where the case changes, then each message."""
    from django.middleware.csrf import get_token

    request = context.get("request")
    token = get_token(request) if request is not None else ""
    out = []
    tz, language = timezone.get_current_timezone(), get_language()
    previous_case = object()
    for m in messages:
        if m.case_id != previous_case:
            if m.case_id:
                out.append(
                    _fmt(
                        '<li class="case-boundary" data-boundary="{}"><span>Case #{}</span></li>',
                        m.case_id,
                        m.case_id,
                    )
                )
            previous_case = m.case_id
        out.append(message_html(m, customer, token, language=language, tz=tz))
    return mark_safe("".join(str(x) for x in out))


# One row of the inbox list (Python for the same reason as the timeline) ----------

# Extra cells at the start of a row (a bulk-select checkbox): callables taking the case
# and returning safe HTML, appended by other apps in their AppConfig.ready().
ROW_PREFIXES: list = []


def _preview_marker(c) -> SafeString:
    """Who wrote the preview; an outbound one that did not go out says so, never "You:"."""
    if c.preview_direction != "out":
        return SafeString("")
    status = getattr(c, "preview_status", None)
    if status == "failed":
        return _fmt('<span class="not-sent">⚠ {}</span> ', _("Not sent:"))
    if status == "unknown":
        return _fmt('<span class="not-sent">⚠ {}</span> ', _("Maybe not sent:"))
    if status == "queued":
        return _fmt('<span class="you">{}</span> ', _("Sending:"))
    return _fmt('<span class="you">{}</span> ', _("You:"))


def _row_html(c) -> SafeString:
    customer = c.thread.customer
    status = c.status
    meta = []
    if c.waiting_since and status != "resolved":
        since = timezone.localtime(c.waiting_since)
        meta.append(
            _fmt(
                '<span class="waiting" data-since="{}" title="{}">{}</span>',
                c.waiting_since.isoformat(),
                _("Waiting since %(when)s") % {"when": f"{since:%Y-%m-%d %H:%M}"},
                _("waiting %(time)s") % {"time": waited(c.waiting_since)},
            )
        )
    if status == "snoozed" and c.snoozed_until:
        until = timezone.localtime(c.snoozed_until)
        meta.append(
            _fmt(
                '<span class="snooze">{}</span>',
                _("until %(when)s") % {"when": f"{until:%b} {until.day} {until:%H:%M}"},
            )
        )
    meta.append(_fmt('<span class="status st-{}">{}</span>', status, c.get_status_display()))
    if c.priority >= 2:
        meta.append(_fmt('<span class="prio prio-{}">{}</span>', c.priority, c.get_priority_display()))
    for label in c.labels.all():
        meta.append(_fmt('<span class="label" style="--label: {}">{}</span>', label.color, label.name))
    meta.append(
        _fmt(
            '<span class="assignee" data-assignee>{}</span>',
            person(c.assignee) if c.assignee_id else _("Unassigned"),
        )
    )
    if c.team_id:
        meta.append(_fmt('<span class="team">{}</span>', c.team.name))
    preview = c.preview or c.subject or ""
    if len(preview) > 140:
        preview = preview[:139] + "…"
    kind = c.preview_channel_kind or (c.origin_channel.kind if c.origin_channel_id else "")
    return _fmt(
        '<li class="case-row{}" data-case="{}" data-thread="{}">{}'
        '<a href="/inbox/case/{}/" class="case-link"><span class="who">{}{} '
        '<strong class="name">{}</strong> <span class="case-no">#{}</span></span>'
        '<span class="preview">{}{}</span><span class="meta">{}</span></a></li>',
        " unread" if c.unread else "",
        c.pk,
        c.thread_id,
        SafeString("".join(str(prefix(c)) for prefix in ROW_PREFIXES)),
        c.pk,
        _fmt('<span class="dot" title="{0}" aria-label="{0}"></span> ', _("Unread")) if c.unread else "",
        _badge(kind or ""),
        str(customer),
        c.pk,
        _preview_marker(c),
        preview,
        SafeString(" ".join(meta)),
    )


@register.simple_tag
def case_rows(cases):
    return SafeString("".join(_row_html(c) for c in cases))
