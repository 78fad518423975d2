"""Reading an email's headers: Message-IDs, decoded texts, parameters and addresses."""

from __future__ import annotations

import re
from email.message import Message
from email.utils import getaddresses

from channels_adapters.email.charsets import decode_bytes, header_decode

_MSGID = re.compile(r"<[^<>\s]+>")


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


def header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a malformed header reads as absent, never as a crash
        return ""
    return str(value) if value is not None else ""


def all_headers(msg: Message, name: str) -> list[str]:
    try:
        return [str(v) for v in (msg.get_all(name) or [])]
    except Exception:  # noqa: BLE001 - as above
        return []


def raw_headers(msg: Message, name: str) -> list[str]:
    """A header's values as the parser stored them (8-bit bytes surrogate-escaped), undecoded."""
    name = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == name]


def text_header(msg: Message, name: str, hints: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """A header decoded with charset supersets (see charsets.py); (text, repair notes)."""
    raw = raw_headers(msg, name)
    if not raw:
        return "", []
    return header_decode(raw[0], hints=hints)


def param(msg: Message, header: str, name: str, hints: tuple[str, ...]) -> str:
    """A header parameter (an attachment's file name) decoded like the header itself.

    Read from the raw value with the compat32 parameter parser, which hands back
    RFC 2231 values (`filename*=gb2312''%D6%D0...`) still undecoded, so their
    charset gets the same superset rule; encoded words inside the quotes (Outlook
    writes `filename="=?gb2312?B?...?="`) and raw 8-bit names are decoded too."""
    for raw in raw_headers(msg, header)[:1]:
        shell = Message()
        shell[header] = re.sub(r"\r?\n[ \t]", " ", raw)
        value = shell.get_param(name, header=header)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded as latin-1)
            charset, _, text = value
            return decode_bytes(text.encode("latin-1", "ignore"), charset or "utf-8")[0].strip()
        if value:
            return header_decode(str(value), hints=hints)[0].strip()
    return ""


def addresses(msg: Message, *names: str, hints: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    # Split the raw value first, then decode each display name: a decoded name
    # may hold a comma or angle brackets that would split one address in two.
    values = [re.sub(r"\r?\n[ \t]", " ", v) for name in names for v in raw_headers(msg, name)]
    pairs = []
    for display, address in getaddresses(values):
        address = header_decode(address)[0].strip().lower()
        if "@" in address:
            pairs.append((header_decode(display, hints=hints)[0].strip(), address))
    return pairs


def unique(items):
    seen, result = set(), []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            result.append(item)
    return result
