"""Which words of a mail are new: replies lose their quoted history, forwards keep it.

The same separator line means two things: Outlook, AOL and Yahoo write
"-----Original Message-----" above the quote of a reply *and* above a
forwarded mail. Only the subject ("FW:", "Fwd:") or a forward-only marker
("---------- Forwarded message ---------") tells a forward; a reply's subject
("RE:") wins over a marker found in the quoted history of an older forward.
"""

from __future__ import annotations

import re

from mailparser_reply.parser import EmailMessage as ReplyText

# Languages whose "On ... wrote:" / "From: ... Sent:" headers split quoted history off.
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "da", "sv", "pl"]

_PREFIXES = r"^\s*(?:\[[^\]]*\]\s*)?"  # a list tag like "[support]" may come first
_FORWARD_SUBJECT = re.compile(_PREFIXES + r"(fwd?|fw|wg|tr|rv|enc|doorst)\s*:", re.IGNORECASE)
_REPLY_SUBJECT = re.compile(_PREFIXES + r"(re|aw|sv|antw|odp|rif|ref|res)\s*(\[\d+\])?\s*:", re.IGNORECASE)
# Lines only a forward writes (never the quote header of a reply).
_FORWARD_BODY = re.compile(
    r"^[>\s]*[-_* ]*(forwarded message|begin forwarded message|weitergeleitete nachricht|"
    r"message transféré|mensaje reenviado|mensagem encaminhada|messaggio inoltrato|doorgestuurd bericht)",
    re.IGNORECASE | re.MULTILINE,
)

# Outlook's separator above the quoted mail, in the languages of REPLY_LANGUAGES
# (the library knows only the English one): everything below it is history.
_ORIGINAL_SEPARATOR = re.compile(
    r"^[ \t>]*-{3,}[ \t]*(original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|mensagem original|oprindelig meddelelse|"
    r"ursprungligt meddelande|originalmeddelande|wiadomość oryginalna)[ \t]*-{3,}[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


def is_forward(subject: str, text: str) -> bool:
    """The customer hands us someone else's mail (the quoted part is the point of it)."""
    if _FORWARD_SUBJECT.match(subject or ""):
        return True
    if _REPLY_SUBJECT.match(subject or ""):
        return False
    return bool(_FORWARD_BODY.search(text or ""))


def visible_text(text: str) -> str:
    """The new words of a reply: quoted history and signature removed.

    Falls back to the whole text when the library would leave nothing (a mail
    that is entirely a quote is still something the agent must see)."""
    if not text.strip():
        return ""
    separator = _ORIGINAL_SEPARATOR.search(text)
    if separator and text[: separator.start()].strip():
        text = text[: separator.start()]
    try:
        parsed = ReplyText(text=text, languages=list(REPLY_LANGUAGES), keep_hyphen_lists=True).read()
        reply = parsed.replies[0].body if parsed.replies else ""
    except Exception:  # noqa: BLE001 - a regex surprise must not lose the mail
        reply = ""
    # Bottom-posted quotes without an "On ... wrote:" line are left by the library.
    lines = reply.split("\n")
    while lines and (lines[-1].startswith(">") or not lines[-1].strip()):
        lines.pop()
    reply = "\n".join(lines).strip()
    return reply or text.strip()
