"""Which case a mail answers: In-Reply-To, then References, then the reply token, then the subject tag.

Our replies carry a Reply-To of ``support+<token>@domain`` where the token is
the case id plus a short HMAC of it (so nobody can write themselves into
another customer's case by guessing numbers), and a ``[#<case id>]`` tag in
the subject for people who copy the subject into a new mail.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from django.utils.crypto import salted_hmac

from channels_adapters.email import selectors
from channels_adapters.email.parsing import ParsedEmail
from conversations.models import Case

_TOKEN_SALT = "helpdesk.email.reply-token"
_TOKEN = re.compile(r"^c(\d{1,12})-([0-9a-f]{10})$")
_SUBJECT_TAG = re.compile(r"\[#(\d{1,12})\]")


def reply_token(case_id: int) -> str:
    return f"c{case_id}-{salted_hmac(_TOKEN_SALT, str(case_id)).hexdigest()[:10]}"


def reply_token_case_id(token: str) -> int | None:
    match = _TOKEN.match(token.strip().lower())
    if not match or not hmac.compare_digest(reply_token(int(match.group(1))), match.group(0)):
        return None
    return int(match.group(1))


def reply_address(channel_address: str, case_id: int) -> str:
    local, _, domain = channel_address.partition("@")
    local = local.split("+", 1)[0]
    return f"{local}+{reply_token(case_id)}@{domain}"


def subject_tag(case_id: int) -> str:
    return f"[#{case_id}]"


def subject_tag_case_id(subject: str) -> int | None:
    match = _SUBJECT_TAG.search(subject or "")
    return int(match.group(1)) if match else None


@dataclass
class ThreadMatch:
    case: Case | None
    customer_id: int | None
    how: str  # in_reply_to, references, token, subject, sender
    # Strong matches prove the writer received our mail: a new address may join the customer.
    strong: bool


def thread_match(
    parsed: ParsedEmail, *, extra_recipients: list[str] = (), known: dict | None = None
) -> ThreadMatch:
    """`known`: the result of selectors.email_messages_by_ids for these ids, when the caller has it."""
    ids = ([parsed.in_reply_to] if parsed.in_reply_to else []) + list(reversed(parsed.references))
    if known is None:
        known = selectors.email_messages_by_ids(message_ids=ids)
    for position, message_id in enumerate(ids):
        message = (known.get(message_id) or [None])[0]
        if message is not None:
            how = "in_reply_to" if position == 0 and parsed.in_reply_to else "references"
            return ThreadMatch(message.case, message.thread.customer_id, how, strong=True)
    for address in [*parsed.to, *parsed.cc, *parsed.delivered_to, *extra_recipients]:
        local = address.split("@", 1)[0]
        if "+" not in local:
            continue
        case_id = reply_token_case_id(local.split("+", 1)[1])
        case = selectors.case_get(case_id=case_id) if case_id else None
        if case is not None:
            return ThreadMatch(case, case.thread.customer_id, "token", strong=True)
    case_id = subject_tag_case_id(parsed.subject)
    case = selectors.case_get(case_id=case_id) if case_id else None
    if case is not None:
        # A number in a subject proves nothing: it is noted, never used to attach a new address.
        return ThreadMatch(case, case.thread.customer_id, "subject", strong=False)
    return ThreadMatch(None, None, "sender", strong=False)
