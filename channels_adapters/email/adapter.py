"""Email: IMAP polling and mail relays in, SMTP out, threaded onto the customer's one thread.

Inbound arrives two ways, both ending as an InboundEvent holding the raw MIME:
- IMAP polling (``channels_adapters/email/imap.py``, a beat task);
- ``POST /hooks/<key>/`` from a relay: Mailgun's signed form with ``body-mime``
  (a route forwarding to a URL ending in ``mime``), or the raw message as
  ``Content-Type: message/rfc822`` signed with ``X-Signature: sha256=<hex
  HMAC-SHA256 of the body with signing_key>``.

Outbound goes through the channel's SMTP server with Django's mail machinery.
Ignored on purpose: auto-replies, list and bulk mail, read receipts (MDN),
delayed-delivery notices, mail from our own address.
"""

from __future__ import annotations

import hmac
import re
import smtplib
import ssl
import time
from email import policy
from email.parser import BytesParser
from email.utils import formataddr
from urllib.parse import parse_qs

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.html import escape, linebreaks

from channels_adapters.base import (
    ChannelAdapter,
    Ignored,
    InboundMessage,
    ParseError,
    PermanentSendError,
    Sender,
    SendResult,
    SignatureError,
    StatusUpdate,
    TransientSendError,
    check_prefixed_signature,
    hmac_sha256_hex,
)
from channels_adapters.email import selectors, services
from channels_adapters.email.parsing import (
    ParsedEmail,
    bounce_explain,
    html_sanitize,
    parse_email,
)
from channels_adapters.email.threads import reply_address, subject_tag, thread_match
from customers.models import IdentityKind

SIGNATURE_HEADER = "X-Signature"
_SUBJECT_TAGS = re.compile(r"\s*\[#\d+\]")
RAW_TYPES = ("message/rfc822", "message/global", "application/octet-stream", "text/plain")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


# An email channel with this smtp_host sends to settings.HELPDESK_EMAIL["SANDBOX_BACKEND"] (the demo).
SANDBOX_SMTP_HOST = "sandbox"


def email_conf(name: str):
    defaults = {
        "SANDBOX_BACKEND": "",
        "SMTP_TIMEOUT_SECONDS": 20.0,
        "IMAP_TIMEOUT_SECONDS": 30.0,
        "IMAP_BATCH": 200,
        "RELAY_MAX_AGE_SECONDS": 300,
        "REFERENCES_MAX": 20,
    }
    return getattr(settings, "HELPDESK_EMAIL", {}).get(name, defaults[name])


def channel_option(channel, name: str, default=None):
    """Non-secret options live in Channel.settings; an admin may also put them with the credentials."""
    for source in (channel.settings or {}, channel.credentials or {}):
        value = source.get(name)
        if value not in (None, ""):
            return value
    return default


def _without_plus(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _channel_address(channel) -> str:
    return str(channel.credentials.get("address") or "").strip().lower()


# Inbound ------------------------------------------------------------------------


def _form_fields(event) -> dict[str, bytes]:
    """Mailgun's form, read back from the stored request exactly as it arrived."""
    content_type = event.headers.get("Content-Type") or event.content_type
    if event.content_type == "application/x-www-form-urlencoded":
        query = parse_qs(event.body_bytes.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0].encode() for k, v in query.items()}
    envelope = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + event.body_bytes
    form = BytesParser(policy=policy.compat32).parsebytes(envelope)
    if not form.is_multipart():
        raise ParseError("The relay's form could not be read (no multipart boundary).")
    fields = {}
    for part in form.get_payload():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = part.get_payload(decode=True) or b""
    return fields


def relay_raw(event) -> tuple[bytes, list[str]]:
    """The raw MIME of a stored event, and envelope recipients the relay told us."""
    if event.content_type in FORM_TYPES:
        fields = _form_fields(event)
        if "body-mime" not in fields:
            raise ParseError(
                "The Mailgun post has no 'body-mime': the route must forward to a URL ending in 'mime' "
                "(store-and-notify with the MIME variant)."
            )
        recipients = [
            a.strip().lower() for a in fields.get("recipient", b"").decode("utf-8", "replace").split(",")
        ]
        return fields["body-mime"], [a for a in recipients if "@" in a]
    return event.body_bytes, []


class EmailAdapter(ChannelAdapter):
    kind = "email"
    identity_kinds = (IdentityKind.EMAIL,)
    credential_keys = (
        "address",
        "imap_host",
        "imap_port",
        "imap_user",
        "imap_password",
        "imap_folder",
        "smtp_host",
        "smtp_port",
        "smtp_user",
        "smtp_password",
        "signing_key",
    )
    ignored_events = (
        "auto-reply (Auto-Submitted, X-Auto-Response-Suppress, Precedence)",
        "mailing list or bulk mail (List-Id, Precedence: bulk/list/junk)",
        "read receipt (multipart/report; report-type=disposition-notification)",
        "delayed-delivery notice (DSN with Action: delayed)",
        "bounce about mail we did not send",
        "mail from our own address",
    )

    # Signature ---------------------------------------------------------------

    def verify(self, channel, request):
        key = str(channel.credentials.get("signing_key") or "")
        if not key:
            raise SignatureError("this email channel has no relay signing_key")
        body = request.body  # read first: Django then parses the form from these same bytes
        if request.content_type in FORM_TYPES:
            timestamp = request.POST.get("timestamp", "")
            token = request.POST.get("token", "")
            signature = request.POST.get("signature", "")
            if not (timestamp and token and signature):
                raise SignatureError("missing Mailgun timestamp, token or signature")
            try:
                age = abs(time.time() - float(timestamp))
            except ValueError:
                raise SignatureError("malformed Mailgun timestamp") from None
            expected = hmac_sha256_hex(key, (timestamp + token).encode())
            if not hmac.compare_digest(signature.lower(), expected):
                raise SignatureError("Mailgun signature mismatch")
            if age > email_conf("RELAY_MAX_AGE_SECONDS"):
                # Checked after the signature so a forger learns nothing from the answer.
                raise SignatureError("stale Mailgun timestamp (replayed or delayed request)")
            return
        check_prefixed_signature(request.headers.get(SIGNATURE_HEADER), hmac_sha256_hex(key, body))

    # Parsing -----------------------------------------------------------------

    def parse(self, channel, event):
        raw, envelope_recipients = relay_raw(event)
        if not raw.strip():
            raise ParseError("The message is empty.")
        try:
            parsed = parse_email(raw)
        except Exception as exc:  # noqa: BLE001 - the stdlib parser is lenient; this is real garbage
            raise ParseError(f"The message is not readable MIME: {exc!r}") from exc
        if not parsed.sender_address:
            raise ParseError("The message has no From address.")
        if parsed.bounce is not None:
            return [self._bounce_item(channel, parsed)]
        if parsed.noise:
            return [Ignored(f"automated mail ({parsed.noise}) from {parsed.sender_address}")]
        own = _channel_address(channel)
        if own and _without_plus(parsed.sender_address) == _without_plus(own):
            return [Ignored(f"mail from our own address {own}")]
        # One lookup answers the duplicate check and the threading (the mail's own id, the ids it answers).
        known = selectors.email_messages_by_ids(
            message_ids=[parsed.message_id, parsed.in_reply_to, *parsed.references]
        )
        same = known.get(parsed.message_id, [])
        elsewhere = [m for m in same if m.channel_id != channel.pk and m.direction == "in"]
        if elsewhere and not any(m.channel_id == channel.pk for m in same):
            # Sent to two of our mailboxes at once (To one, Cc the other): one message on the thread.
            return [Ignored(f"same mail already received on {elsewhere[0].channel.name}")]
        duplicate = any(m.channel_id == channel.pk for m in same)
        return [self._message_item(channel, raw, parsed, envelope_recipients, known, duplicate)]

    def _bounce_item(self, channel, parsed: ParsedEmail):
        bounce = parsed.bounce
        if not bounce.failed:
            who = ", ".join(bounce.recipients) or "an unnamed recipient"
            return Ignored(f"delivery status '{bounce.action}' for {who}")
        known = selectors.email_messages_by_ids(message_ids=bounce.original_ids)
        ours = [
            m
            for i in bounce.original_ids
            for m in known.get(i, [])
            if m.direction == "out" and m.channel_id == channel.pk
        ]
        original = ours[0] if ours else None
        if original is None:
            for address in bounce.recipients:
                original = selectors.outbound_latest_to(channel=channel, address=address)
                if original is not None:
                    break
        if original is None:
            return Ignored(f"bounce about mail we did not send ({', '.join(bounce.original_ids) or 'no id'})")
        return StatusUpdate(
            external_id=original.external_id,
            status="failed",
            error=bounce_explain(bounce),
            timestamp=parsed.date,
        )

    def _message_item(self, channel, raw, parsed: ParsedEmail, envelope_recipients, known, duplicate: bool):
        match = thread_match(parsed, extra_recipients=envelope_recipients, known=known)
        meta = {
            "message_id": parsed.message_id,
            "in_reply_to": parsed.in_reply_to,
            "references": parsed.references,
            "subject": parsed.subject,
            "from": parsed.sender_address,
            "to": parsed.to,
            "cc": parsed.cc,
            "reply_to": parsed.reply_to,
            "thread_match": match.how,
        }
        if match.case is not None:
            meta["matched_case"] = match.case.pk
        if parsed.forwarded:
            meta["forwarded"] = True
        if parsed.charset_repairs:
            meta["charset_repairs"] = parsed.charset_repairs
        if parsed.text != parsed.visible_text:
            # The whole text, quotes and signature included, for "show the full message".
            meta["full_text"] = parsed.text[:100_000]
        attachments, html = [], ""
        if not duplicate:
            # A repeat delivery stores nothing new: the first message stands.
            copied = match.case is not None and parsed.sender_address in selectors.case_copied_addresses(
                case_id=match.case.pk
            )
            if copied:
                # Someone the customer copied answers (reply-all): another person, who keeps
                # their own thread; only the customer's own new addresses join theirs.
                meta["copied_on_case"] = match.case.pk
            elif match.strong and match.customer_id:
                linked = services.email_sender_link(
                    customer_id=match.customer_id, address=parsed.sender_address
                )
                if linked is not None:
                    meta["identity_linked_by"] = match.how
            attachments, stored_meta = services.email_parts_store(
                raw=raw, parts=parsed.parts, html=parsed.html
            )
            meta.update(stored_meta)
            if parsed.html:
                cids = {a["content_id"]: a["url"] for a in attachments if a.get("content_id")}
                # The agent reads the reply, not the history; the whole HTML stays in storage.
                html = html_sanitize(parsed.visible_html, cids)
                if parsed.visible_html != parsed.html:
                    meta["html_quote_removed"] = True
            sender_identity = selectors.email_identity_get(address=parsed.sender_address)
            if match.customer_id and sender_identity and sender_identity.customer_id != match.customer_id:
                # The writer is already someone else's address: their mail stays on their own
                # thread (one person, one thread); the agent sees which case it referred to.
                meta["refers_to_other_customer"] = match.customer_id
        visible = parsed.visible_text
        shown_files = [a for a in attachments if not a.get("inline")]
        return InboundMessage(
            external_id=parsed.message_id,
            sender=Sender(IdentityKind.EMAIL, parsed.sender_address, parsed.sender_name),
            text=visible or ("" if attachments else parsed.subject),
            kind="text" if visible or not shown_files else "media",
            html=html,
            attachments=attachments,
            timestamp=parsed.date,
            meta=meta,
        )

    # Outbound ----------------------------------------------------------------

    def send(self, channel, message, recipient):
        creds = channel.credentials
        address = _channel_address(channel)
        if not creds.get("smtp_host") or not address:
            raise PermanentSendError(
                f"The email channel {channel.name} has no SMTP server or address: an admin must set "
                "'smtp_host' and 'address'."
            )
        headers, meta, subject = self._threading_headers(channel, message, recipient.address)
        services.email_outbound_meta_record(message_id=message.pk, meta=meta)
        text, html = self._bodies(channel, message)
        cc = meta.get("cc") or []
        email = EmailMultiAlternatives(
            subject=subject,
            body=text,
            from_email=formataddr((str(channel_option(channel, "from_name", channel.name)), address)),
            to=[recipient.address],
            cc=cc,
            reply_to=[reply_address(address, message.case_id)] if message.case_id else None,
            headers=headers,
            connection=self._connection(channel),
        )
        email.attach_alternative(html, "text/html")
        for attachment in message.attachments or []:
            path = attachment.get("path")
            if not path:
                continue
            try:
                with default_storage.open(path, "rb") as handle:
                    content = handle.read()
            except OSError as exc:
                raise PermanentSendError(
                    f"The attachment {attachment.get('name') or path} is missing from storage ({exc})."
                ) from exc
            email.attach(attachment.get("name") or "attachment", content, attachment.get("content_type"))
        self._smtp_send(channel, email, recipient.address)
        return SendResult(external_id=headers["Message-ID"], meta=meta)

    @staticmethod
    def outbound_message_id(channel, message) -> str:
        """Ours and stable per message: a retry after an unclear failure reuses it, so the
        customer's client shows one mail, and nobody can guess it to hijack a thread."""
        from django.utils.crypto import salted_hmac

        domain = _channel_address(channel).partition("@")[2] or "helpdesk.invalid"
        digest = salted_hmac("helpdesk.email.message-id", str(message.pk)).hexdigest()[:16]
        return f"<hd.{message.pk}.{digest}@{domain}>"

    def _threading_headers(self, channel, message, to_address: str) -> tuple[dict, dict, str]:
        parent = selectors.thread_email_latest(
            thread_id=message.thread_id, case_id=message.case_id, exclude_id=message.pk
        )
        message_id = self.outbound_message_id(channel, message)
        headers = {"Message-ID": message_id}
        meta: dict = {"message_id": message_id}
        references: list[str] = []
        base_subject = ""
        if parent is not None:
            pmeta = parent.meta
            references = list(pmeta.get("references") or [])
            if not references and pmeta.get("in_reply_to"):
                references = [pmeta["in_reply_to"]]
            references.append(pmeta["message_id"])
            references = list(dict.fromkeys(references))
            limit = email_conf("REFERENCES_MAX")
            if len(references) > limit:
                # RFC 5322 3.6.4: keep the first (the thread's root) and the most recent ones.
                references = [references[0], *references[-(limit - 1) :]]
            headers["In-Reply-To"] = pmeta["message_id"]
            headers["References"] = " ".join(references)
            meta.update(in_reply_to=pmeta["message_id"], references=references)
            base_subject = pmeta.get("subject") or ""
        if "cc" in message.meta:
            cc = list(message.meta.get("cc") or [])
        else:
            # Reply-all by default: people the customer copied stay in the conversation.
            last_in = selectors.thread_email_latest(
                thread_id=message.thread_id, case_id=message.case_id, exclude_id=message.pk, direction="in"
            )
            cc = list(last_in.meta.get("cc") or []) if last_in else []
        own = _channel_address(channel)
        own_local, _, own_domain = own.partition("@")
        cc = [
            a
            for a in cc
            if a != to_address
            and not (a.endswith("@" + own_domain) and a.split("@")[0].split("+")[0] == own_local)
        ]
        if cc:
            meta["cc"] = cc
        while base_subject.lower().startswith(("re:", "aw:", "sv:")):
            base_subject = base_subject[3:].strip()
        # Tags of other cases (an old thread, another helpdesk) would only mislead the next reply.
        base_subject = _SUBJECT_TAGS.sub("", base_subject).strip()
        if not base_subject:
            base_subject = str(message.meta.get("proactive_subject") or "")
        if not base_subject:
            base_subject = (message.case.subject if message.case_id else "") or str(
                channel_option(channel, "default_subject", "Your request")
            )
        subject = f"Re: {base_subject}" if parent is not None else base_subject
        if message.case_id and subject_tag(message.case_id) not in subject:
            subject = f"{subject} {subject_tag(message.case_id)}"
        meta["subject"] = subject
        if message.author == "bot":
            # RFC 3834: our automated mail says so, so auto-responders do not answer it.
            headers["Auto-Submitted"] = "auto-replied" if parent is not None else "auto-generated"
            headers["X-Auto-Response-Suppress"] = "All"
        if message.meta.get("list_unsubscribe"):
            # RFC 2369 + RFC 8058: the mail client's own unsubscribe button, one click, no page.
            headers["List-Unsubscribe"] = f"<{message.meta['list_unsubscribe']}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return headers, meta, subject

    def _bodies(self, channel, message) -> tuple[str, str]:
        signature = ""
        user = message.author_user
        if user is not None:
            profile = getattr(user, "profile", None)
            signature = str(getattr(profile, "email_signature", "") or "")
            if not signature:
                name = user.get_full_name() or user.get_username()
                signature = str(channel_option(channel, "signature", "")).replace("{agent}", name)
        text = message.body
        html = linebreaks(escape(message.body))
        if signature:
            text = f"{text}\n\n-- \n{signature}"
            html += f'<div class="signature">-- <br>{linebreaks(escape(signature))}</div>'
        return text, html

    def _connection(self, channel):
        creds = channel.credentials
        sandbox = email_conf("SANDBOX_BACKEND")
        if sandbox and creds.get("smtp_host") == SANDBOX_SMTP_HOST:
            # The demo (settings.HELPDESK_SANDBOX): everything above ran as for
            # real mail; only the transport is Django's file or console backend.
            return get_connection(sandbox, fail_silently=False)
        port = int(creds.get("smtp_port") or 587)
        security = str(channel_option(channel, "smtp_security", "ssl" if port == 465 else "starttls")).lower()
        return get_connection(
            "django.core.mail.backends.smtp.EmailBackend",
            host=creds["smtp_host"],
            port=port,
            username=creds.get("smtp_user") or "",
            password=creds.get("smtp_password") or "",
            use_tls=security == "starttls",
            use_ssl=security == "ssl",
            timeout=email_conf("SMTP_TIMEOUT_SECONDS"),
            fail_silently=False,
        )

    def _smtp_send(self, channel, email, to_address: str) -> None:
        host = f"{channel.credentials['smtp_host']}:{channel.credentials.get('smtp_port') or 587}"
        try:
            email.send(fail_silently=False)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentSendError(
                f"The mail server {host} refused our login ({_smtp_said(exc)}): an admin must check "
                f"the SMTP username and password of {channel.name}.",
                code=str(exc.smtp_code),
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code, said = next(iter(exc.recipients.values()), (0, b""))
            words = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
            if 400 <= code < 500:
                raise TransientSendError(
                    f"The mail server {host} temporarily refused {to_address} ({code} {words}); retrying.",
                    code=str(code),
                ) from exc
            raise PermanentSendError(
                f"The mail server refused the address {to_address} ({code} {words}): check the "
                "customer's email address.",
                code=str(code),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            # Sender refused, data refused, or any other coded answer: 4xx is worth a retry.
            if 400 <= exc.smtp_code < 500:
                raise TransientSendError(
                    f"The mail server {host} asked us to try later ({_smtp_said(exc)}).",
                    code=str(exc.smtp_code),
                ) from exc
            raise PermanentSendError(
                f"The mail server {host} refused the message ({_smtp_said(exc)}).", code=str(exc.smtp_code)
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentSendError(
                f"The mail server {host} does not offer what the channel asks for ({exc}): an admin must "
                f"check 'smtp_security' (ssl, starttls or none) and the port of {channel.name}."
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentSendError(
                f"The mail server {host} presented a certificate we cannot trust ({exc.verify_message}): "
                "an admin must check the SMTP host name."
            ) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientSendError(f"Could not reach the mail server {host} ({exc}); retrying.") from exc


def _smtp_said(exc: smtplib.SMTPResponseException) -> str:
    said = (
        exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    )
    return f"{exc.smtp_code} {said}".strip()
