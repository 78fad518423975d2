"""Reading a raw email (RFC 5322 / MIME) into what the helpdesk needs.

Pure functions over bytes: no database, no storage. The adapter decides what
to do with the result (a message, a bounce, noise).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

import nh3

from channels_adapters.email.charsets import decode_bytes, part_text
from channels_adapters.email.headers import (
    addresses,
    header,
    message_id_normalize,
    message_ids,
    param,
    raw_headers,
    text_header,
    unique,
)
from channels_adapters.email.loops import Bounce, bounce_explain, bounce_read, noise_reason
from channels_adapters.email.quotes import html_visible, is_forward, visible_text

# Re-exported: their home moved, callers did not.
__all__ = ["Bounce", "bounce_explain", "decode_bytes", "message_id_normalize", "message_ids", "visible_text"]


@dataclass
class Part:
    """An attachment or inline image: bytes plus how the mail described them."""

    content: bytes
    filename: str
    content_type: str
    content_id: str = ""
    inline: bool = False


@dataclass
class ParsedEmail:
    message_id: str
    sender_address: str
    sender_name: str
    subject: str
    date: datetime | None
    to: list[str]
    cc: list[str]
    reply_to: list[str]
    delivered_to: list[str]
    in_reply_to: str
    references: list[str]
    text: str  # the whole text part (or text made from the HTML), quotes included
    visible_text: str  # what the agent reads: no quoted history, no signature
    html: str  # the HTML part as sent (unsafe), "" if none
    visible_html: str  # the HTML without a reply's quoted history (unsafe), "" if none
    parts: list[Part] = field(default_factory=list)
    noise: str = ""  # why this is automated mail, "" for a person's mail
    bounce: Bounce | None = None
    forwarded: bool = False
    charset_repairs: list[str] = field(default_factory=list)


# HTML ---------------------------------------------------------------------------


class _TextFromHtml(HTMLParser):
    """Readable text from an HTML mail: blocks become lines, quotes become '> '."""

    _BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr", "pre"}
    _SKIP = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.skip = 0
        self.quote = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self.skip += 1
        elif tag == "blockquote":
            self.quote += 1
            self._newline()
        elif tag in self._BLOCK:
            self._newline()

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self._newline()
        elif tag in self._BLOCK:
            self._newline()

    def handle_data(self, data):
        if self.skip:
            return
        text = re.sub(r"\s+", " ", data)
        if not text.strip() and not self.lines[-1]:
            return
        if not self.lines[-1] and self.quote:
            self.lines[-1] = "> " * self.quote
        self.lines[-1] += text

    def _newline(self):
        if self.lines[-1].strip():
            self.lines.append("")

    def text(self) -> str:
        lines = [line.strip() for line in self.lines]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    return parser.text()


def html_sanitize(html: str, cid_urls: dict[str, str] | None = None) -> str:
    """Safe HTML to show an agent; inline images point at our stored copies."""
    for cid, url in (cid_urls or {}).items():
        html = re.sub(rf"cid:{re.escape(cid)}(?=[\"'\s>])", url, html, flags=re.IGNORECASE)
    return nh3.clean(html, url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")


# The whole message ------------------------------------------------------------


def _walk_leaves(msg: Message):
    """Every leaf part, without descending into attached messages (they stay one attachment)."""
    if msg.get_content_maintype() == "message":
        yield msg
        return
    if msg.is_multipart():
        for sub in msg.get_payload():
            yield from _walk_leaves(sub)
    else:
        yield msg


_RAW_BOUNDARY = re.compile(r"""\bboundary\s*=\s*(?:"([^"]+)"|([^\s;"]+))""", re.IGNORECASE)


class LenientMessage(EmailMessage):
    """A message whose multipart boundary is read the way mail clients read it.

    RFC 2045 wants a boundary holding "=" quoted, and Outlook-style boundaries
    ("----=_NextPart_000_0001") often are not: the stdlib stops the value at the
    "=", finds no such boundary line, and the whole body ends up as one opaque
    part. The raw parameter, up to ";" or whitespace, is what the sender meant."""

    def get_boundary(self, failobj=None):
        boundary = super().get_boundary(failobj)
        for value in raw_headers(self, "Content-Type")[:1]:
            match = _RAW_BOUNDARY.search(re.sub(r"\r?\n[ \t]", " ", value))
            if match and (match.group(1) or match.group(2)) != boundary:
                return match.group(1) or match.group(2)
        return boundary


POLICY = policy.default.clone(message_factory=LenientMessage)


def read_headers(raw: bytes) -> EmailMessage:
    return BytesParser(policy=POLICY).parsebytes(raw, headersonly=True)


def fallback_message_id(raw: bytes) -> str:
    """A stable id for mail without a Message-ID, so a second delivery is still a duplicate."""
    return f"<sha256.{hashlib.sha256(raw).hexdigest()[:40]}@missing-message-id>"


def parse_email(raw: bytes) -> ParsedEmail:
    msg = BytesParser(policy=POLICY).parsebytes(raw)
    # A legacy mailer writes raw 8-bit headers in the charset it labels its body with.
    hints = tuple(dict.fromkeys(c for c in (p.get_content_charset() for p in msg.walk()) if c))
    senders = (
        addresses(msg, "From", hints=hints)
        or addresses(msg, "Sender", hints=hints)
        or addresses(msg, "Return-Path", hints=hints)
    )
    sender_name, sender_address = senders[0] if senders else ("", "")
    subject, repairs = text_header(msg, "Subject", hints)
    subject = subject.strip()

    body_parts: set[int] = set()
    text = html = ""
    try:
        plain = msg.get_body(preferencelist=("plain",))
        rich = msg.get_body(preferencelist=("html",))
    except Exception:  # noqa: BLE001 - malformed structure: fall back to the walk below
        plain = rich = None
    if plain is not None and plain.get_content_type() == "text/plain":
        text, note = part_text(plain)
        body_parts.add(id(plain))
        repairs += [note] if note else []
    if rich is not None and rich.get_content_type() == "text/html":
        html, note = part_text(rich)
        body_parts.add(id(rich))
        repairs += [note] if note else []

    parts: list[Part] = []
    for index, part in enumerate(_walk_leaves(msg)):
        if id(part) in body_parts:
            continue
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/disposition-notification"):
            continue
        disposition = part.get_content_disposition()
        content_id = header(part, "Content-ID").strip().strip("<>")
        filename = (
            param(part, "Content-Disposition", "filename", hints)
            or param(part, "Content-Type", "name", hints)
            or part.get_filename()
            or ""
        )
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            content = inner[0].as_bytes() if isinstance(inner, list) and inner else b""
            filename = filename or f"{(header(inner[0], 'Subject') if inner else '') or 'message'}.eml"
        else:
            try:
                content = part.get_payload(decode=True) or b""
            except Exception:  # noqa: BLE001 - undecodable: keep what is there
                content = str(part.get_payload()).encode()
        if ctype.startswith("text/") and disposition != "attachment" and not filename and not content_id:
            # A stray extra text part (some clients split a body in several): add it to the text.
            extra, note = part_text(part)
            if ctype == "text/plain":
                text = f"{text}\n\n{extra}".strip()
            elif ctype == "text/html" and not html:
                html = extra
            repairs += [note] if note else []
            continue
        if not content:
            continue
        parts.append(
            Part(
                content=content,
                filename=filename or f"part-{index}",
                content_type=ctype,
                content_id=content_id,
                inline=bool(content_id) and disposition != "attachment",
            )
        )

    if not text and html:
        text = html_to_text(html)
    forwarded = is_forward(subject, text)
    shown_html = html
    if html and not forwarded:
        shown_html = html_visible(html)
        if not html_to_text(shown_html).strip():
            shown_html = html  # all quote, or a mark at the very top: the agent sees it all
    try:
        date = parsedate_to_datetime(header(msg, "Date")) if header(msg, "Date") else None
        if date is not None and date.tzinfo is None:
            date = None
    except (TypeError, ValueError, IndexError):
        date = None
    noise = noise_reason(msg)
    bounce = bounce_read(msg, sender_address)
    return ParsedEmail(
        message_id=message_id_normalize(header(msg, "Message-ID")) or fallback_message_id(raw),
        sender_address=sender_address,
        sender_name=sender_name,
        subject=subject,
        date=date,
        to=unique(a for _, a in addresses(msg, "To")),
        cc=unique(a for _, a in addresses(msg, "Cc")),
        reply_to=unique(a for _, a in addresses(msg, "Reply-To")),
        delivered_to=unique(a for _, a in addresses(msg, "Delivered-To", "X-Original-To", "Envelope-To")),
        in_reply_to=message_id_normalize(header(msg, "In-Reply-To")),
        references=message_ids(header(msg, "References")),
        text=text.strip(),
        # A forward is the customer handing us someone else's mail: the "quote" is the point.
        visible_text=text.strip() if forwarded else visible_text(text),
        html=html,
        visible_html=shown_html,
        parts=parts,
        noise=noise,
        bounce=bounce,
        forwarded=forwarded,
        charset_repairs=repairs,
    )
