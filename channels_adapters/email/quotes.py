"""Which words of a mail are new: replies lose their quoted history, forwards keep it.

The same separator line means two things: Outlook, AOL and Yahoo write
"-----Original Message-----" above the quote of a reply *and* above a
forwarded mail. Only the subject ("FW:", "Fwd:") or a forward-only marker
("---------- Forwarded message ---------") tells a forward; a reply's subject
("RE:") wins over a marker found in the quoted history of an older forward.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

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


# HTML -----------------------------------------------------------------------------

# Where mail clients start the quoted history in HTML (class or id, lowercased).
_QUOTE_MARKS = {
    "gmail_quote",  # Gmail
    "gmail_quote_container",
    "yahoo_quoted",  # Yahoo
    "moz-cite-prefix",  # Thunderbird's "On ... wrote:" line
    "divrplyfwdmsg",  # Outlook on the web / new Outlook
    "appendonsend",  # Outlook: an empty marker right above the quoted header
    "outlookmessageheader",
    "ms-outlook-mobile-reference-message",
    "zmail_extra",  # Zoho
    "protonmail_quote",
}
# Outlook desktop's quoted header: a div with only a thin top border.
_OUTLOOK_HEADER_STYLE = re.compile(r"border-top:\s*solid\s+#(e1e1e1|b5c4df)", re.IGNORECASE)


class _QuoteStart(HTMLParser):
    """Finds the offset where the quoted history of an HTML reply begins."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.source = source
        self.lines = [0]
        # getpos() counts "\n" only; splitlines() would also break at \x0c, \u2028...
        for line in source.split("\n"):
            self.lines.append(self.lines[-1] + len(line) + 1)
        self.found: int | None = None

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.lines[line - 1] + column

    def handle_starttag(self, tag, attrs):
        if self.found is not None:
            return
        values = dict(attrs)
        names = {*(values.get("class") or "").lower().split(), (values.get("id") or "").lower()}
        if (
            names & _QUOTE_MARKS
            or (tag == "blockquote" and (values.get("type") or "").lower() == "cite")
            or (tag == "div" and _OUTLOOK_HEADER_STYLE.search(values.get("style") or ""))
        ):
            self.found = self._offset()

    def handle_data(self, data):
        if self.found is None and _ORIGINAL_SEPARATOR.search(data.replace("\xa0", " ")):
            self.found = self._offset()  # AOL and Outlook.com write the separator as text


def html_visible(html: str) -> str:
    """The HTML of a reply without its quoted history ("" when nothing would be left).

    Cut at the first place a mail client marks the quote; the sanitizer closes
    the elements left open. A mail with no known mark is kept whole."""
    finder = _QuoteStart(html)
    try:
        finder.feed(html)
        finder.close()
    except Exception:  # noqa: BLE001 - odd markup: show it whole rather than lose words
        return html
    if not finder.found:
        return html
    return html[: finder.found]
