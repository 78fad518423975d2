"""IMAP polling of an email channel's mailbox with the stdlib imaplib.

UIDs only mean something within one UIDVALIDITY: we remember (UIDVALIDITY,
last UID) per channel and folder, fetch what is above it, keep each mail as an
InboundEvent (the same path as a webhook), then flag it \\Seen or move it to
the processed folder. If the server changes UIDVALIDITY the folder is read
again; the Message-ID dedupe keeps that from making second messages.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from dataclasses import dataclass

from channels_adapters.email import services
from channels_adapters.email.adapter import channel_option, email_conf

logger = logging.getLogger(__name__)

_UID = re.compile(rb"\bUID (\d+)")
_FETCH_CHUNK = 25


class ImapPollError(Exception):
    """Polling failed; the message is written for an admin."""


@dataclass
class PollResult:
    folder: str
    uidvalidity: int
    fetched: int
    stored: list[int]
    duplicates: int
    resynced: bool


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def imap_connect(channel) -> imaplib.IMAP4:
    creds = channel.credentials
    host = str(creds.get("imap_host") or "")
    if not host:
        raise ImapPollError(f"The email channel {channel.name} has no IMAP server ('imap_host').")
    port = int(creds.get("imap_port") or 993)
    security = str(channel_option(channel, "imap_security", "ssl" if port == 993 else "starttls")).lower()
    timeout = email_conf("IMAP_TIMEOUT_SECONDS")
    try:
        if security == "ssl":
            conn = imaplib.IMAP4_SSL(host, port, ssl_context=ssl.create_default_context(), timeout=timeout)
        else:
            conn = imaplib.IMAP4(host, port, timeout=timeout)
            if security == "starttls":
                conn.starttls(ssl_context=ssl.create_default_context())
    except (TimeoutError, OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise ImapPollError(f"Could not reach the IMAP server {host}:{port} ({security}): {exc}") from exc
    try:
        conn.login(str(creds.get("imap_user") or ""), str(creds.get("imap_password") or ""))
    except imaplib.IMAP4.error as exc:
        _logout(conn)
        raise ImapPollError(
            f"The IMAP server {host} refused the login for '{creds.get('imap_user')}': check the user "
            f"and password (or app password). The server said: {exc}"
        ) from exc
    return conn


def _logout(conn) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        conn.logout()


def _search(conn, criteria: str, start: int) -> list[int]:
    typ, data = conn.uid("SEARCH", criteria)
    if typ != "OK":
        raise ImapPollError(f"SEARCH {criteria} failed: {data!r}")
    return sorted(u for u in (int(x) for x in (data[0] or b"").split()) if u >= start)


def _fetch(conn, uids: list[int]) -> list[tuple[int, bytes]]:
    typ, data = conn.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
    if typ != "OK":
        raise ImapPollError(f"FETCH failed: {data!r}")
    fetched = []
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            match = _UID.search(item[0])
            if match:
                fetched.append((int(match.group(1)), item[1]))
    return sorted(fetched)


def _mark_processed(conn, channel, uids: list[int]) -> None:
    if not uids:
        return
    uidset = ",".join(map(str, uids))
    target = channel_option(channel, "imap_processed_folder")
    if target:
        typ, caps = conn.capability()  # after login: servers announce more than in the greeting
        if typ == "OK" and b"MOVE" in b" ".join(caps).upper().split():
            typ, data = conn.uid("MOVE", uidset, _quote(target))
        else:
            typ, data = conn.uid("COPY", uidset, _quote(target))
            if typ == "OK":
                conn.uid("STORE", uidset, "+FLAGS.SILENT", r"(\Deleted)")
                conn.expunge()
        if typ != "OK":
            raise ImapPollError(f"Could not move processed mail to '{target}': {data!r}")
    else:
        conn.uid("STORE", uidset, "+FLAGS.SILENT", r"(\Seen)")


def imap_poll(*, channel) -> PollResult:
    """Fetch new mail of one channel's folder into inbound events. Safe to run again."""
    folder = str(channel.credentials.get("imap_folder") or channel_option(channel, "imap_folder", "INBOX"))
    try:
        conn = imap_connect(channel)
    except ImapPollError as exc:
        services.mailbox_state_error(channel=channel, folder=folder, error=str(exc))
        raise
    try:
        typ, data = conn.select(_quote(folder))
        if typ != "OK":
            raise ImapPollError(f"The IMAP folder '{folder}' cannot be opened: {data!r}")
        uidvalidity = int(conn.untagged_responses.get("UIDVALIDITY", [b"0"])[0])
        state = services.mailbox_state_get(channel=channel, folder=folder)
        first_poll = state.uidvalidity is None
        resynced = not first_poll and state.uidvalidity != uidvalidity
        start = state.last_uid + 1 if state.uidvalidity == uidvalidity else 1
        # "n:*" always includes the highest UID even when it is below n.
        present = _search(conn, f"UID {start}:*", start)
        uids, seen_through = present, 0
        if first_poll and not channel_option(channel, "imap_import_seen", False):
            # A mailbox connected for the first time: mail already read there is history,
            # not new customer mail. Only unread mail becomes messages.
            uids = _search(conn, f"UID {start}:* UNSEEN", start)
            seen_through = present[-1] if present else 0
        batch_size = email_conf("IMAP_BATCH")
        if len(uids) > batch_size:
            uids, seen_through = uids[:batch_size], 0  # the rest waits for the next poll
        stored, duplicates, fetched = [], 0, 0
        for i in range(0, len(uids), _FETCH_CHUNK):
            batch = _fetch(conn, uids[i : i + _FETCH_CHUNK])
            fetched += len(batch)
            new, dup = services.imap_messages_store(
                channel=channel, folder=folder, uidvalidity=uidvalidity, fetched=batch
            )
            stored += new
            duplicates += dup
            # Only after our copy is committed does the mail leave the folder (or turn \Seen).
            _mark_processed(conn, channel, [uid for uid, _ in batch])
        # Records the UIDVALIDITY and the poll even when nothing was new.
        services.imap_messages_store(
            channel=channel, folder=folder, uidvalidity=uidvalidity, fetched=[], seen_through=seen_through
        )
        if resynced:
            logger.warning(
                "UIDVALIDITY of %s on channel %s changed; folder re-read, duplicates skipped",
                folder,
                channel.pk,
            )
        return PollResult(folder, uidvalidity, fetched, stored, duplicates, resynced)
    except ImapPollError as exc:
        services.mailbox_state_error(channel=channel, folder=folder, error=str(exc))
        raise
    except (OSError, imaplib.IMAP4.error) as exc:
        message = f"IMAP polling of '{folder}' failed: {exc}"
        services.mailbox_state_error(channel=channel, folder=folder, error=message)
        raise ImapPollError(message) from exc
    finally:
        _logout(conn)
