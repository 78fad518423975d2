"""What a website-chat visitor may read: only the messages of their own web-chat identity.

The customer record behind a visitor may hold much more (an email thread, a
WhatsApp chat) once a pre-chat email links them, and the agent sees all of it;
the visitor never does. Every read of the visitor side goes through
`visitor_messages`, so that rule lives in one place.
"""

from __future__ import annotations

import re

from django.core import signing
from django.db.models import Max, QuerySet
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext

from channels_adapters.webchat.config import WidgetConfig
from channels_adapters.webchat.tokens import Visitor, visitor_from_address
from conversations.attachments import attachment_inline, attachment_of, attachment_stored
from conversations.models import Case, CaseRead, Direction, Message, MessageKind
from customers.models import Identity, IdentityKind

HISTORY_LIMIT = 100
_ATTACHMENT_SALT = "webchat.attachment"
_ATTACHMENT_MAX_AGE = 7 * 86400


def visitor_identity(*, visitor: Visitor) -> Identity | None:
    return (
        Identity.objects.select_related("customer")
        .filter(kind=IdentityKind.WEBCHAT, address=visitor.address)
        .first()
    )


def visitor_messages(*, channel, identity: Identity | None, after: int | None = None) -> QuerySet[Message]:
    """The visitor's conversation on this channel: what they wrote and what we sent them here.

    Never notes or system lines, never what reached the same customer elsewhere.
    """
    if identity is None:
        return Message.objects.none()
    messages = (
        Message.objects.filter(channel=channel, identity=identity)
        .exclude(kind__in=(MessageKind.NOTE, MessageKind.SYSTEM))
        .select_related("author_user")
    )
    if after is not None:
        messages = messages.filter(pk__gt=after)
    return messages


def visitor_history(*, channel, identity: Identity | None, after: int | None = None) -> list[Message]:
    """Oldest first; without `after`, the newest HISTORY_LIMIT."""
    messages = visitor_messages(channel=channel, identity=identity, after=after)
    if after is not None:
        return list(messages.order_by("pk")[:HISTORY_LIMIT])
    return list(reversed(messages.order_by("-pk")[:HISTORY_LIMIT]))


def visitor_case(*, channel, identity: Identity | None) -> Case | None:
    """The case of the visitor's latest message: the number they can quote on any channel."""
    if identity is None:
        return None
    latest = (
        Message.objects.filter(channel=channel, identity=identity, case__isnull=False)
        .order_by("-pk")
        .values_list("case_id", flat=True)
        .first()
    )
    return Case.objects.filter(pk=latest).only("pk", "status", "thread_id").first() if latest else None


def case_json(case: Case | None) -> dict | None:
    if case is None:
        return None
    return {"id": case.pk, "number": case.pk, "status": case.status}


def seen_up_to(*, channel, identity: Identity | None, case: Case | None) -> int | None:
    """The visitor's newest message an agent has had on screen (their read of the case)."""
    if identity is None or case is None:
        return None
    read_at = CaseRead.objects.filter(case=case).aggregate(last=Max("read_at"))["last"]
    if read_at is None:
        return None
    return Message.objects.filter(
        channel=channel, identity=identity, direction=Direction.IN, created_at__lte=read_at
    ).aggregate(last=Max("pk"))["last"]


def attachment_token(*, message_id: int, index: int, visitor: Visitor) -> str:
    return signing.dumps([message_id, index, visitor.group], salt=_ATTACHMENT_SALT, compress=True)


def visitor_attachment(*, channel, token: str, message_id: int, index: int) -> dict | None:
    """The stored file a signed link names, if the link is ours, for this file, and was
    made for the visitor the message belongs to; else None."""
    try:
        named_id, named_index, group = signing.loads(
            token, salt=_ATTACHMENT_SALT, max_age=_ATTACHMENT_MAX_AGE
        )
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if (named_id, named_index) != (message_id, index):
        return None
    message = Message.objects.select_related("identity").filter(pk=message_id, channel=channel).first()
    visitor = visitor_from_address(message.identity.address) if message and message.identity_id else None
    if visitor is None or visitor.group != group:
        return None
    return attachment_of(message, index)


def message_json(message: Message, *, visitor: Visitor) -> dict:
    attachments = []
    for index, attachment in enumerate(message.attachments or []):
        stored = attachment_stored(attachment)
        if stored is None:
            continue
        token = attachment_token(message_id=message.pk, index=index, visitor=visitor)
        url = reverse("webchat:attachment", args=[visitor.channel_key, message.pk, index])
        attachments.append(
            {
                "name": stored.get("name") or "file",
                "content_type": stored.get("content_type") or "",
                "size": stored.get("size"),
                "url": f"{url}?t={token}",
                "image": attachment_inline(stored.get("content_type") or "")
                and (stored.get("content_type") or "").startswith("image/"),
            }
        )
    data = {
        "id": message.pk,
        "client_id": (message.meta or {}).get("webchat", {}).get("client_id"),
        "direction": message.direction,
        "author": message.author,
        "author_name": _author_name(message),
        "text": message.body,
        "created_at": message.created_at.isoformat(),
        "status": message.status,
        "attachments": attachments,
    }
    survey = (message.meta or {}).get("survey")
    if message.direction == Direction.OUT and isinstance(survey, dict):
        scores = _survey_scores(survey.get("kind"))
        if scores:
            data["survey"] = {"kind": survey.get("kind"), "scores": scores}
    elif message.direction == Direction.OUT and (message.meta or {}).get("quick_replies"):
        # Answer buttons (the bot's "did that help?"): a tap sends the button's text.
        data["choices"] = [str(q) for q in message.meta["quick_replies"]][:10]
    return data


def _author_name(message: Message) -> str:
    if message.direction == Direction.IN:
        return ""
    user = message.author_user if message.author_user_id else None
    if user is None:
        # The bot signs with its own name (channel settings "bot": {"name"}).
        bot = (message.meta or {}).get("bot")
        return str(bot.get("name") or "") if isinstance(bot, dict) else ""
    return user.first_name or user.get_username()


def _survey_scores(kind) -> list[int]:
    try:
        from kpis.models import SURVEY_SCALE
    except ImportError:
        return []
    scale = SURVEY_SCALE.get(kind)
    return list(range(scale[0], scale[1] + 1)) if scale else []


def availability(*, config: WidgetConfig, now=None) -> dict:
    """Inside business hours "we usually reply in a few minutes"; outside, when we are back."""
    from kpis.services import business_hours_for, business_hours_now

    now = now or timezone.now()
    hours = business_hours_for(team_id=config.team_id)
    is_open, next_open = business_hours_now(hours=hours, at=now)
    if is_open:
        return {"open": True, "text": gettext("We usually reply in a few minutes.")}
    if next_open is None:
        return {"open": False, "text": gettext("We're away right now. Leave a message and we'll answer.")}
    local = timezone.localtime(next_open, next_open.tzinfo)
    return {
        "open": False,
        "next_open": next_open.isoformat(),
        "text": gettext("We're away right now. We're back %(when)s (%(zone)s). Leave a message.")
        % {
            "when": formats.date_format(local, "l H:i"),
            "zone": hours.time_zone if hours else "UTC",
        },
    }


_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"OPR/(\d+)")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+).*Safari/")),
)
_SYSTEMS = (
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Android", re.compile(r"Android")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux")),
)


def user_agent_summary(user_agent: str) -> str:
    """ "Chrome 131 on Windows": enough for an agent, without a user-agent database."""
    if not user_agent:
        return ""
    browser = next(
        (f"{name} {match.group(1)}" for name, pattern in _BROWSERS if (match := pattern.search(user_agent))),
        "",
    )
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), "")
    if browser and system:
        return gettext("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or user_agent[:80]


def visitor_details(*, identity: Identity, meta: dict) -> dict:
    """The sidebar's "Website visitor" box: where they are now, on what, from where."""
    from channels_adapters.webchat.presence import presence_get

    chat = (meta or {}).get("webchat") or {}
    present = presence_get(address=identity.address)
    page = (present or {}).get("url") or (chat.get("page") or {}).get("url") or ""
    rows = [
        (
            gettext("Status"),
            gettext("On the website now") if present else gettext("Has left the website"),
            "",
        )
    ]
    if page:
        rows.append((gettext("Page"), page, page if page.startswith(("https://", "http://")) else ""))
    if chat.get("user_agent"):
        rows.append((gettext("Browser"), user_agent_summary(chat["user_agent"]), ""))
    if chat.get("time_zone"):
        rows.append((gettext("Time zone"), chat["time_zone"], ""))
    rows.append(
        (
            gettext("Identity"),
            gettext("Verified by the website")
            if chat.get("verified")
            else gettext("Not verified (details typed by the visitor)"),
            "",
        )
    )
    return {"title": gettext("Website visitor"), "rows": rows, "present": bool(present)}
