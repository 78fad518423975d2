"""The channel's automatic answer outside business hours: once per case per closed period.

Sent as the bot (conversations.services.send_automatic), so it is never a
response for the KPIs (docs/kpis.md) and the customer keeps waiting for a
person. The closed period is named by the moment it ends (the next opening),
and a unique row per (case, period) makes "once" hold under concurrent messages.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from automation.models import OutOfHoursReply, OutOfHoursSent
from automation.rules.conditions import fact_language
from conversations.models import Author, Direction, Message
from helpdesk.process_cache import ProcessCache

logger = logging.getLogger(__name__)


# Asked on every inbound message: the channels' replies are cached per process like the
# rules (cleared on save and delete here, automation.receivers).
replies_cache = ProcessCache(ttl_seconds=lambda: settings.HELPDESK_AUTOMATION["RULE_CACHE_SECONDS"])


def _config(channel_id):
    # False for "none": the process cache does not keep None.
    reply = (
        OutOfHoursReply.objects.filter(channel_id=channel_id, is_active=True)
        .select_related("business_hours")
        .first()
    )
    return reply or False


def out_of_hours_text(
    *, config: OutOfHoursReply, language: str, next_open: datetime | None, time_zone: str
) -> str:
    with translation.override(language):
        when = ""
        if next_open is not None:
            local = next_open.astimezone(ZoneInfo(time_zone))
            when = f"{formats.date_format(local, 'DATETIME_FORMAT')} ({time_zone})"
        custom = config.text_es if language == "es" else config.text_en
        if custom.strip():
            return custom.replace("{next_open}", when)
        if next_open is None:
            return _("We are closed right now. We will answer you as soon as we are back.")
        return _("We are closed right now. We open again on %(next_open)s and will answer you then.") % {
            "next_open": when
        }


def out_of_hours_reply(*, message: Message, now: datetime | None = None) -> Message | None:
    """Answer a customer's message that arrived while the channel's team is closed."""
    from kpis.services import business_hours_for, business_hours_now

    if message.direction != Direction.IN or message.author != Author.CUSTOMER or not message.case_id:
        return None
    config = replies_cache.get(message.channel_id, lambda: _config(message.channel_id))
    if not config:
        return None
    now = now or timezone.now()
    case = message.case
    hours = config.business_hours or business_hours_for(team_id=case.team_id)
    is_open, next_open = business_hours_now(hours=hours, at=now)
    if is_open:
        return None
    period = next_open.isoformat() if next_open else "closed"
    language = fact_language(customer=case.thread.customer, channel=message.channel, message=message)
    text = out_of_hours_text(
        config=config, language=language, next_open=next_open, time_zone=hours.time_zone if hours else "UTC"
    )
    try:
        with transaction.atomic():
            marker = OutOfHoursSent.objects.create(case=case, period=period, sent_at=now)
            reply = send_reply_automatic(case=case, message=message, text=text)
            marker.message = reply
            marker.save(update_fields=["message"])
    except IntegrityError:
        return None  # already answered in this closed period
    except ValidationError as exc:
        # Nothing recorded: the next message in this period tries again.
        logger.warning("automation: out-of-hours reply for case %s not sent: %s", case.pk, exc)
        return None
    return reply


def send_reply_automatic(*, case, message: Message, text: str) -> Message:
    from conversations.services import send_automatic

    return send_automatic(case=case, body=text, channel=message.channel, identity=message.identity)
