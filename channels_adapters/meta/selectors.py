"""Reads for the conversation windows Meta imposes (the inbox shows them, adapters enforce them).

Messenger, Instagram and WhatsApp let a business answer freely for 24 hours
after the customer's last message. After that Messenger allows the HUMAN_AGENT
tag up to 7 days (a person, never a bot), and WhatsApp only an approved template.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)

# Rule names the inbox can switch on.
RULE_NONE = "none"  # the channel has no window (X, email, SMS...)
RULE_STANDARD = "standard"  # inside 24 hours: anything goes
RULE_HUMAN_AGENT = "human_agent"  # Messenger 24h-7d: an agent may answer with the HUMAN_AGENT tag
RULE_TEMPLATE_ONLY = "template_only"  # WhatsApp after 24h: approved templates only
RULE_CLOSED = "closed"  # nothing may be sent until the customer writes again
RULE_NEVER = "never_contacted"  # the customer never wrote on this channel


def _human_agent_allowed(channel) -> bool:
    # Messenger grants the tag to every page; Instagram needs the "Human Agent"
    # permission approved for the app, so an admin switches it on.
    default = channel.kind == "facebook"
    return bool((channel.settings or {}).get("human_agent_tag", default))


def last_customer_message_at(*, channel, thread=None, identity=None) -> datetime | None:
    """When the customer last wrote on this channel (the provider's clock when it gave one)."""
    from conversations.models import Direction, Message

    messages = Message.objects.filter(channel=channel, direction=Direction.IN)
    if thread is not None:
        messages = messages.filter(thread=thread)
    if identity is not None:
        messages = messages.filter(identity=identity)
    row = messages.order_by("-created_at", "-id").values_list("provider_timestamp", "created_at").first()
    if row is None:
        return None
    return row[0] or row[1]


def last_customer_messages_at(*, channel, identity_ids) -> dict:
    """`last_customer_message_at` for many of a channel's customers at once: {identity id: time}."""
    from conversations.models import Direction, Message

    rows = (
        Message.objects.filter(channel=channel, direction=Direction.IN, identity_id__in=list(identity_ids))
        .order_by("identity_id", "-created_at", "-id")
        .distinct("identity_id")
        .values_list("identity_id", "provider_timestamp", "created_at")
    )
    return {identity_id: provider_at or created_at for identity_id, provider_at, created_at in rows}


def window_rule(*, channel, last_at: datetime | None, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    if channel.kind not in ("facebook", "instagram", "whatsapp"):
        return {"open": True, "closes_at": None, "rule": RULE_NONE, "last_customer_message_at": last_at}
    templates = channel.kind == "whatsapp"
    state = {"last_customer_message_at": last_at, "templates": templates}
    if last_at is None:
        return {**state, "open": False, "closes_at": None, "rule": RULE_NEVER}
    if now < last_at + STANDARD_WINDOW:
        return {**state, "open": True, "closes_at": last_at + STANDARD_WINDOW, "rule": RULE_STANDARD}
    if _human_agent_allowed(channel) and now < last_at + HUMAN_AGENT_WINDOW:
        return {**state, "open": True, "closes_at": last_at + HUMAN_AGENT_WINDOW, "rule": RULE_HUMAN_AGENT}
    rule = RULE_TEMPLATE_ONLY if templates else RULE_CLOSED
    return {**state, "open": False, "closes_at": None, "rule": rule}


def window_state(*, channel, thread, now: datetime | None = None) -> dict:
    """{"open", "closes_at", "rule", "last_customer_message_at", "templates"} for the reply box.

    "open" means free-form text may be sent now; with rule "template_only" a
    WhatsApp template still can. "closes_at" is when the current rule ends.
    """
    last_at = None
    if channel.kind in ("facebook", "instagram", "whatsapp"):
        last_at = last_customer_message_at(channel=channel, thread=thread)
    state = window_rule(channel=channel, last_at=last_at, now=now)
    state["reason"] = window_refusal(channel=channel, state=state) if not state["open"] else ""
    return state


def window_refusal(*, channel, state: dict) -> str:
    """The sentence an agent reads when a free-form reply is refused."""
    name = channel.get_kind_display()
    last_at = state.get("last_customer_message_at")
    when = f" (last message {last_at:%Y-%m-%d %H:%M} UTC)" if last_at else ""
    if state["rule"] == RULE_NEVER:
        return f"The customer has never written to us on {name}, so {name} does not allow us to start."
    if state["rule"] == RULE_TEMPLATE_ONLY:
        return (
            f"The customer last wrote on WhatsApp more than 24 hours ago{when}: WhatsApp only allows "
            "an approved template now. Pick a template to reopen the conversation."
        )
    limit = "7 days" if _human_agent_allowed(channel) else "24 hours"
    return (
        f"The customer last wrote on {name} more than {limit} ago{when}: {name} does not allow a "
        "reply until they write again. Answer on another channel the customer uses."
    )
