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
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

import nh3

from channels_adapters.email.charsets import decode_bytes, header_decode
from channels_adapters.email.quotes import html_visible, is_forward, visible_text

__all__ = ["decode_bytes", "visible_text"]  # re-exported: their home moved, callers did not

_MSGID = re.compile(r"<[^<>\s]+>")
# Values of X-Auto-Response-Suppress that Exchange puts on automated mail (OOF
# replies, DSNs, NDRs). "RN"/"NRN" alone only ask for no read receipts and
# appear on ordinary human mail, so they do not make a message noise.
_SUPPRESS_MEANS_AUTOMATED = {"all", "oof", "autoreply", "dr", "ndr"}
_NOISE_PRECEDENCE = {"bulk", "junk", "auto_reply", "list"}
_DELAY_WORDS = re.compile(
    r"\b(delayed|will (continue|keep) trying|not (yet )?been delivered yet|warning: message)", re.IGNORECASE
)


@dataclass
class Part:
    """An attachment or inline image: bytes plus how the mail described them."""

    content: bytes
    filename: str
    content_type: str
    content_id: str = ""
    inline: bool = False


@dataclass
class Bounce:
    """A delivery status notification (RFC 3464) about mail we sent."""

    action: str  # failed, delayed, delivered, relayed, expanded
    recipients: list[str]
    status: str  # e.g. 5.1.1
    diagnostic: str
    original_ids: list[str]  # Message-IDs that can find our outbound message

    @property
    def failed(self) -> bool:
        return self.action == "failed"


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


# Headers and addresses -------------------------------------------------------


def message_ids(value: str | None) -> list[str]:
    """Every <id> in a header, in order; tolerant of folding and junk between them."""
    if not value:
        return []
    found = _MSGID.findall(str(value))
    if not found and str(value).strip() and " " not in str(value).strip():
        # Some mailers drop the angle brackets.
        found = [f"<{str(value).strip()}>"]
    return found


def message_id_normalize(value: str | None) -> str:
    ids = message_ids(value)
    return ids[0] if ids else ""


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a malformed header reads as absent, never as a crash
        return ""
    return str(value) if value is not None else ""


def _all_headers(msg: Message, name: str) -> list[str]:
    try:
        return [str(v) for v in (msg.get_all(name) or [])]
    except Exception:  # noqa: BLE001 - as above
        return []


def _raw_headers(msg: Message, name: str) -> list[str]:
    """A header's values as the parser stored them (8-bit bytes surrogate-escaped), undecoded."""
    name = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == name]


def _text_header(msg: Message, name: str, hints: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """A header decoded with charset supersets (see charsets.py); (text, repair notes)."""
    raw = _raw_headers(msg, name)
    if not raw:
        return "", []
    return header_decode(raw[0], hints=hints)


def _param(msg: Message, header: str, name: str, hints: tuple[str, ...]) -> str:
    """A header parameter (an attachment's file name) decoded like the header itself.

    Read from the raw value with the compat32 parameter parser, which hands back
    RFC 2231 values (`filename*=gb2312''%D6%D0...`) still undecoded, so their
    charset gets the same superset rule; encoded words inside the quotes (Outlook
    writes `filename="=?gb2312?B?...?="`) and raw 8-bit names are decoded too."""
    for raw in _raw_headers(msg, header)[:1]:
        shell = Message()
        shell[header] = re.sub(r"\r?\n[ \t]", " ", raw)
        value = shell.get_param(name, header=header)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded as latin-1)
            charset, _, text = value
            return decode_bytes(text.encode("latin-1", "ignore"), charset or "utf-8")[0].strip()
        if value:
            return header_decode(str(value), hints=hints)[0].strip()
    return ""


def _addresses(msg: Message, *names: str, hints: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    # Split the raw value first, then decode each display name: a decoded name
    # may hold a comma or angle brackets that would split one address in two.
    values = [re.sub(r"\r?\n[ \t]", " ", v) for name in names for v in _raw_headers(msg, name)]
    pairs = []
    for display, address in getaddresses(values):
        address = header_decode(address)[0].strip().lower()
        if "@" in address:
            pairs.append((header_decode(display, hints=hints)[0].strip(), address))
    return pairs


def _unique(items):
    seen, result = set(), []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            result.append(item)
    return result


# Charsets ---------------------------------------------------------------------


def _part_text(part: Message) -> tuple[str, str]:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken transfer encoding still gives the raw text
        payload = None
    if payload is None:
        raw = part.get_payload()
        payload = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    text, note = decode_bytes(payload, part.get_param("charset"))
    return text.replace("\r\n", "\n").replace("\r", "\n"), note


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


# Loop guards --------------------------------------------------------------------


def noise_reason(msg: Message) -> str:
    """Why a mail is automated (never opens a case, never gets an auto-reply), or ""."""
    auto = _header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    suppress = {v.strip().lower() for v in _header(msg, "X-Auto-Response-Suppress").split(",")}
    if suppress & _SUPPRESS_MEANS_AUTOMATED:
        return f"X-Auto-Response-Suppress: {_header(msg, 'X-Auto-Response-Suppress').strip()}"
    precedence = _header(msg, "Precedence").strip().lower()
    if precedence in _NOISE_PRECEDENCE:
        return f"Precedence: {precedence}"
    if _header(msg, "List-Id"):
        return "mailing list (List-Id)"
    if _header(msg, "X-Autoreply") or _header(msg, "X-Autorespond"):
        return "auto-responder header"
    if msg.get_content_type() == "multipart/report":
        report = (msg.get_param("report-type") or "").lower()
        return f"report ({report or 'unknown type'})"
    return ""


def _bounce_sender(sender: str) -> bool:
    local = sender.split("@")[0]
    return local in {"mailer-daemon", "postmaster", "mail-daemon"}


def _dsn_fields(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status part (message level, then per recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload
    text = payload if isinstance(payload, str) else ""
    blocks = [b for b in re.split(r"\r?\n\s*\r?\n", text.strip()) if b.strip()]
    return [BytesHeaderParser(policy=policy.default).parsebytes(b.encode() + b"\n") for b in blocks]


def _original_headers(part: Message) -> Message | None:
    ctype = part.get_content_type()
    if ctype in ("message/rfc822", "message/global"):
        payload = part.get_payload()
        return payload[0] if isinstance(payload, list) and payload else None
    if ctype in ("text/rfc822-headers", "message/rfc822-headers", "text/rfc822"):
        raw = part.get_payload(decode=True) or b""
        return BytesHeaderParser(policy=policy.default).parsebytes(raw)
    return None


def bounce_read(msg: Message, sender: str) -> Bounce | None:
    """RFC 3464 reports, and the non-standard bounces of mailers that do not send one."""
    is_report = msg.get_content_type() == "multipart/report" and (
        (msg.get_param("report-type") or "").lower() == "delivery-status"
    )
    failed_header = [a.strip().lower() for a in _header(msg, "X-Failed-Recipients").split(",") if a.strip()]
    if not is_report and not failed_header and not _bounce_sender(sender):
        return None
    action, status, diagnostic, recipients = "", "", "", list(failed_header)
    original_ids: list[str] = []
    for name in ("Original-Message-ID", "X-Original-Message-ID"):
        original_ids += message_ids(_header(msg, name))
    human_text = ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            for block in _dsn_fields(part):
                for name in ("Original-Message-ID", "X-Original-Message-ID"):
                    original_ids += message_ids(_header(block, name))
                recipient = _header(block, "Final-Recipient") or _header(block, "Original-Recipient")
                if recipient:
                    address = recipient.split(";", 1)[-1].strip().lower()
                    recipients.append(address)
                    action = action or _header(block, "Action").strip().lower()
                    status = status or _header(block, "Status").strip()
                    diagnostic = diagnostic or _header(block, "Diagnostic-Code").split(";", 1)[-1].strip()
        original = _original_headers(part)
        if original is not None:
            original_ids += message_ids(_header(original, "Message-ID"))
        if ctype == "text/plain" and not human_text and part.get_content_disposition() != "attachment":
            human_text = _part_text(part)[0]
    original_ids += message_ids(_header(msg, "In-Reply-To"))
    original_ids += list(reversed(message_ids(_header(msg, "References"))))
    if not is_report:
        # An old-style bounce: the human text is all there is.
        match = re.search(r"\b([45]\.\d{1,3}\.\d{1,3})\b", human_text)
        status = match.group(1) if match else ""
        code = re.search(r"^.*\b[45]\d\d\b.*$", human_text, re.MULTILINE)
        diagnostic = code.group(0).strip() if code else ""
        action = "failed"
        if not status.startswith("5") and _DELAY_WORDS.search(human_text):
            action = "delayed"  # "still trying" warnings are not failures
    return Bounce(
        action=action or "failed",
        recipients=_unique(recipients),
        status=status,
        diagnostic=re.sub(r"\s+", " ", diagnostic)[:500],
        original_ids=_unique(original_ids),
    )


_STATUS_WORDS = {
    "5.1.1": "the address does not exist",
    "5.1.0": "the address was not accepted",
    "5.1.2": "the recipient's domain does not exist or has no mail server",
    "5.1.3": "the address is not a valid email address",
    "5.1.6": "the recipient has moved and left no forwarding address",
    "5.1.10": "the recipient's domain does not accept mail (null MX)",
    "5.2.1": "the mailbox is disabled or not accepting messages",
    "5.2.2": "the recipient's mailbox is full",
    "5.2.3": "the message is larger than the recipient's server accepts",
    "5.3.4": "the message is larger than the recipient's server accepts",
    "5.4.4": "the recipient's mail server could not be found",
    "5.4.7": "delivery took too long and was abandoned",
    "5.7.1": "the recipient's server refused the message (policy or spam filter)",
    "5.7.26": "the recipient's server refused the message because our domain's authentication "
    "(SPF/DKIM/DMARC) failed",
}


def bounce_explain(bounce: Bounce) -> str:
    """The bounce in words an agent can act on."""
    who = ", ".join(bounce.recipients) or "the customer"
    reason = _STATUS_WORDS.get(bounce.status)
    if reason is None and bounce.status.startswith("5.7"):
        reason = _STATUS_WORDS["5.7.1"]
    if reason is None and bounce.status.startswith("5.2"):
        reason = "the recipient's mailbox cannot take the message"
    if reason is None and bounce.status.startswith("5.1"):
        reason = _STATUS_WORDS["5.1.0"]
    sentence = f"The email to {who} bounced: {reason or 'the receiving mail server refused it'}."
    if bounce.diagnostic:
        sentence += f" The server said: {bounce.diagnostic}"
    return sentence


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
        for value in _raw_headers(self, "Content-Type")[:1]:
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
        _addresses(msg, "From", hints=hints)
        or _addresses(msg, "Sender", hints=hints)
        or _addresses(msg, "Return-Path", hints=hints)
    )
    sender_name, sender_address = senders[0] if senders else ("", "")
    subject, repairs = _text_header(msg, "Subject", hints)
    subject = subject.strip()

    body_parts: set[int] = set()
    text = html = ""
    try:
        plain = msg.get_body(preferencelist=("plain",))
        rich = msg.get_body(preferencelist=("html",))
    except Exception:  # noqa: BLE001 - malformed structure: fall back to the walk below
        plain = rich = None
    if plain is not None and plain.get_content_type() == "text/plain":
        text, note = _part_text(plain)
        body_parts.add(id(plain))
        repairs += [note] if note else []
    if rich is not None and rich.get_content_type() == "text/html":
        html, note = _part_text(rich)
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
        content_id = _header(part, "Content-ID").strip().strip("<>")
        filename = (
            _param(part, "Content-Disposition", "filename", hints)
            or _param(part, "Content-Type", "name", hints)
            or part.get_filename()
            or ""
        )
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            content = inner[0].as_bytes() if isinstance(inner, list) and inner else b""
            filename = filename or f"{(_header(inner[0], 'Subject') if inner else '') or 'message'}.eml"
        else:
            try:
                content = part.get_payload(decode=True) or b""
            except Exception:  # noqa: BLE001 - undecodable: keep what is there
                content = str(part.get_payload()).encode()
        if ctype.startswith("text/") and disposition != "attachment" and not filename and not content_id:
            # A stray extra text part (some clients split a body in several): add it to the text.
            extra, note = _part_text(part)
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
        date = parsedate_to_datetime(_header(msg, "Date")) if _header(msg, "Date") else None
        if date is not None and date.tzinfo is None:
            date = None
    except (TypeError, ValueError, IndexError):
        date = None
    noise = noise_reason(msg)
    bounce = bounce_read(msg, sender_address)
    return ParsedEmail(
        message_id=message_id_normalize(_header(msg, "Message-ID")) or fallback_message_id(raw),
        sender_address=sender_address,
        sender_name=sender_name,
        subject=subject,
        date=date,
        to=_unique(a for _, a in _addresses(msg, "To")),
        cc=_unique(a for _, a in _addresses(msg, "Cc")),
        reply_to=_unique(a for _, a in _addresses(msg, "Reply-To")),
        delivered_to=_unique(a for _, a in _addresses(msg, "Delivered-To", "X-Original-To", "Envelope-To")),
        in_reply_to=message_id_normalize(_header(msg, "In-Reply-To")),
        references=message_ids(_header(msg, "References")),
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
