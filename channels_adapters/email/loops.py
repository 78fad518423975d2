"""Loop guards: telling automated mail (auto-replies, lists) and delivery status
notifications (RFC 3464 bounces) from a person's mail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

from channels_adapters.email.charsets import part_text
from channels_adapters.email.headers import header, message_ids, unique

# Values of X-Auto-Response-Suppress that Exchange puts on automated mail (OOF
# replies, DSNs, NDRs). "RN"/"NRN" alone only ask for no read receipts and
# appear on ordinary human mail, so they do not make a message noise.
_SUPPRESS_MEANS_AUTOMATED = {"all", "oof", "autoreply", "dr", "ndr"}
_NOISE_PRECEDENCE = {"bulk", "junk", "auto_reply", "list"}
_DELAY_WORDS = re.compile(
    r"\b(delayed|will (continue|keep) trying|not (yet )?been delivered yet|warning: message)", re.IGNORECASE
)


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


def noise_reason(msg: Message) -> str:
    """Why a mail is automated (never opens a case, never gets an auto-reply), or ""."""
    auto = header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    suppress = {v.strip().lower() for v in header(msg, "X-Auto-Response-Suppress").split(",")}
    if suppress & _SUPPRESS_MEANS_AUTOMATED:
        return f"X-Auto-Response-Suppress: {header(msg, 'X-Auto-Response-Suppress').strip()}"
    precedence = header(msg, "Precedence").strip().lower()
    if precedence in _NOISE_PRECEDENCE:
        return f"Precedence: {precedence}"
    if header(msg, "List-Id"):
        return "mailing list (List-Id)"
    if header(msg, "X-Autoreply") or header(msg, "X-Autorespond"):
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
    failed_header = [a.strip().lower() for a in header(msg, "X-Failed-Recipients").split(",") if a.strip()]
    if not is_report and not failed_header and not _bounce_sender(sender):
        return None
    action, status, diagnostic, recipients = "", "", "", list(failed_header)
    original_ids: list[str] = []
    for name in ("Original-Message-ID", "X-Original-Message-ID"):
        original_ids += message_ids(header(msg, name))
    human_text = ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            for block in _dsn_fields(part):
                for name in ("Original-Message-ID", "X-Original-Message-ID"):
                    original_ids += message_ids(header(block, name))
                recipient = header(block, "Final-Recipient") or header(block, "Original-Recipient")
                if recipient:
                    address = recipient.split(";", 1)[-1].strip().lower()
                    recipients.append(address)
                    action = action or header(block, "Action").strip().lower()
                    status = status or header(block, "Status").strip()
                    diagnostic = diagnostic or header(block, "Diagnostic-Code").split(";", 1)[-1].strip()
        original = _original_headers(part)
        if original is not None:
            original_ids += message_ids(header(original, "Message-ID"))
        if ctype == "text/plain" and not human_text and part.get_content_disposition() != "attachment":
            human_text = part_text(part)[0]
    original_ids += message_ids(header(msg, "In-Reply-To"))
    original_ids += list(reversed(message_ids(header(msg, "References"))))
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
        recipients=unique(recipients),
        status=status,
        diagnostic=re.sub(r"\s+", " ", diagnostic)[:500],
        original_ids=unique(original_ids),
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
