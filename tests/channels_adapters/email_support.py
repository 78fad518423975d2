"""Real servers and signed requests for the email tests.

`SmtpServer` is aiosmtpd on 127.0.0.1 that records what we send, and can
refuse logins, refuse recipients (550) or ask us to try later (451) the way a
real mail server answers. The IMAP server is dovecot (tests/imap_server.py).
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from channels_adapters.base import hmac_sha256_hex
from tests.factories import ChannelFactory

SUPPORT_ADDRESS = "support@support.example.com"
SIGNING_KEY = "relay-signing-key-0123456789"
SMTP_USER = "smtp-user"
SMTP_PASSWORD = "smtp-pass-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.raw)


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.server.mode == "reject_recipient":
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.server.mode == "tempfail_recipient":
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
    )
    # handled=False: aiosmtpd answers the refusal itself (535 5.7.8), as a real server does.
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """mode: accept, reject_recipient, tempfail_recipient. Logins are checked against
    SMTP_USER / SMTP_PASSWORD; a wrong one is answered 535 like any real server."""

    def __init__(self, mode: str = "accept"):
        self.mode = mode
        self.received: list[Received] = []
        self.port = free_port()
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=_authenticator,
            auth_required=True,
            auth_require_tls=False,
        )

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def email_channel(*, smtp_port: int = 9, imap_port: int = 9, **credentials):
    """An email channel as an admin would configure it, pointing at local servers."""
    values = {
        "address": SUPPORT_ADDRESS,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_user": SMTP_USER,
        "smtp_password": SMTP_PASSWORD,
        "imap_host": "127.0.0.1",
        "imap_port": imap_port,
        "imap_user": "support",
        "imap_password": "imap-pass-123",
        "imap_folder": "INBOX",
        "signing_key": SIGNING_KEY,
    }
    values.update(credentials)
    return ChannelFactory(
        kind="email",
        name="Support mailbox",
        credentials=values,
        settings={
            "smtp_security": "none",
            "imap_security": "none",
            "from_name": "Acme Support",
            "signature": "{agent}\nAcme Support",
        },
    )


def raw_headers(channel, body: bytes) -> dict:
    """The raw relay: the MIME body signed like the API channel."""
    return {"X-Signature": "sha256=" + hmac_sha256_hex(channel.credentials["signing_key"], body)}


def mailgun_form(raw: bytes, *, key: str = SIGNING_KEY, timestamp: int | None = None, **fields):
    """Mailgun's store-and-forward post (route action ending in 'mime'), multipart-encoded."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    token = hashlib.sha256(f"token-{timestamp}-{len(raw)}".encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    data = {
        "recipient": SUPPORT_ADDRESS,
        "sender": "jane.doe@example.org",
        "from": "Jane Doe <jane.doe@example.org>",
        "subject": "Hello",
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
        "body-mime": raw.decode("utf-8", "surrogateescape"),
        **fields,
    }
    return encode_multipart(BOUNDARY, data), MULTIPART_CONTENT


def build_mail(
    *,
    sender: str = "Jane Doe <jane.doe@example.org>",
    to: str = SUPPORT_ADDRESS,
    subject: str = "Question about my order",
    body: str = "Hello, where is my order?",
    message_id: str = "<test-mail-1@mail.example.org>",
    headers: dict | None = None,
) -> bytes:
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = "Wed, 25 Nov 2026 09:00:00 +0000"
    mail["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    return mail.as_bytes()
