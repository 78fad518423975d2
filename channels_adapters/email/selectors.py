"""Reads for the email channel: which message, case or customer a mail refers to."""

from __future__ import annotations

from channels_adapters.base import external_id_stored
from channels_adapters.models import Channel
from conversations.models import Case, Direction, Message
from customers.models import Identity, IdentityKind


def email_channel_ids() -> list[int]:
    return list(Channel.objects.filter(kind="email").values_list("pk", flat=True))


def email_messages_by_ids(*, message_ids: list[str]) -> dict[str, list[Message]]:
    """Messages on any email channel whose Message-ID is one of these, newest first per id.

    Inbound mail keeps its Message-ID and our sends keep the one we generated as
    external_id, so the (channel, external_id) unique index answers this: the
    channel ids are listed explicitly so the lookup is an index scan on both columns."""
    # Stored ids are fitted to the column (no NUL, long ones hashed): look up the
    # stored form, answer by the Message-ID as the mail wrote it.
    wanted = {external_id_stored(i): i for i in dict.fromkeys(message_ids) if i}
    if not wanted:
        return {}
    found = (
        Message.objects.filter(channel_id__in=email_channel_ids(), external_id__in=list(wanted))
        .select_related("case", "thread", "channel")
        .order_by("-created_at", "-id")
    )
    result: dict[str, list[Message]] = {}
    for message in found:
        result.setdefault(wanted[message.external_id], []).append(message)
    return result


def case_get(*, case_id: int) -> Case | None:
    return Case.objects.select_related("thread").filter(pk=case_id).first()


def case_copied_addresses(*, case_id: int) -> set[str]:
    """Everyone copied (Cc) on the case's recent mail: other people, not the customer."""
    copied: set[str] = set()
    rows = (
        Message.objects.filter(case_id=case_id, channel__kind="email", meta__has_key="cc")
        .order_by("-created_at")
        .values_list("meta__cc", flat=True)[:50]
    )
    for cc in rows:
        copied.update(a.lower() for a in (cc or []) if isinstance(a, str))
    return copied


def email_identity_get(*, address: str) -> Identity | None:
    return Identity.objects.filter(kind=IdentityKind.EMAIL, address=address.strip().lower()).first()


def outbound_latest_to(*, channel, address: str) -> Message | None:
    """Our latest sent mail to an address on this channel: what a bare bounce is about."""
    return (
        Message.objects.filter(
            channel=channel,
            direction=Direction.OUT,
            identity__kind=IdentityKind.EMAIL,
            identity__address=address.strip().lower(),
            status__in=["sent", "delivered"],
        )
        .order_by("-created_at", "-id")
        .first()
    )


def thread_email_latest(*, thread_id: int, case_id: int | None, exclude_id: int, direction: str = ""):
    """The thread's latest email message carrying a Message-ID, preferring the case's own."""
    found = (
        Message.objects.filter(thread_id=thread_id, channel__kind="email", meta__has_key="message_id")
        .exclude(pk=exclude_id)
        .order_by("-created_at", "-id")
    )
    if direction:
        found = found.filter(direction=direction)
    if case_id is not None:
        in_case = found.filter(case_id=case_id).first()
        if in_case is not None:
            return in_case
    return found.first()
