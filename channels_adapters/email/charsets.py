"""Charsets as mail in the wild uses them: labels that under-promise, headers as bodies.

Mail clients label text with the charset they meant to use, then write the
bytes of a larger one: "GB2312" mail holds GBK characters, "ks_c_5601-1987"
holds Windows code page 949, "ISO-8859-1" holds Windows-1252 curly quotes and
euro signs. Browsers and mail readers decode with the superset, so do we, and
the same way for headers (RFC 2047 encoded words) as for bodies: the stdlib
header parser decodes with the label's exact codec and leaves replacement
characters where the superset's characters were.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from email.message import Message

# Labels Python does not know, or knows under a name we must not use as is.
_LABELS = {
    "x-user-defined": "cp1252",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
    "utf8": "utf-8",
    "x-gbk": "gb18030",
    "x-sjis": "cp932",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
}
# Python codec name -> the superset mail readers decode it as (WHATWG Encoding Standard).
_SUPERSETS = {
    "iso8859-1": "cp1252",
    "ascii": "ascii",  # kept strict on purpose: 8-bit "us-ascii" is usually UTF-8, tried next
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}


def charset_codec(declared: str | None) -> str:
    """The Python codec to read text labelled `declared` with, or "" when the label is unknown."""
    label = (declared or "").strip().strip("\"'").lower()
    if not label:
        return ""
    label = _LABELS.get(label, label)
    try:
        info = codecs.lookup(label)
    except LookupError:
        return ""
    if not getattr(info, "_is_text_encoding", True):
        return ""  # "base64", "zlib", "rot13": codecs, but never a charset
    return _SUPERSETS.get(info.name, info.name)


def decode_bytes(payload: bytes, declared: str | None, *, hints: tuple[str, ...] = ()) -> tuple[str, str]:
    """Text from bytes, readable whatever the declared charset says.

    Tries the declared charset (as its superset) strictly, then the `hints`
    (e.g. the body's charset for a raw 8-bit header), then UTF-8, then
    Windows-1252; returns (text, repair note or "")."""
    label = (declared or "").strip().strip("\"'").lower()
    wanted = charset_codec(label)
    candidates = [wanted] if wanted else []
    candidates += [c for c in (charset_codec(h) for h in hints) if c]
    candidates += ["utf-8", "cp1252"]
    for charset in dict.fromkeys(candidates):
        try:
            text = payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
        repaired = f"declared {label!r}, read as {charset}" if label and charset != wanted else ""
        return text, repaired
    return payload.decode("latin-1"), f"declared {label!r}, read as latin-1"


# Headers ------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
_FOLDING = re.compile(r"\r?\n[ \t]")


def _word_bytes(encoding: str, payload: str) -> bytes:
    if encoding in "bB":
        data = payload.encode("ascii", "ignore")
        try:
            return base64.b64decode(data + b"=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            return payload.encode("ascii", "ignore")
    # Q: "_" is a space, "=XX" an octet (RFC 2047 4.2).
    return quopri.decodestring(payload.replace("_", " ").encode("ascii", "ignore"))


def header_decode(raw: str, *, hints: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """A header's text from its raw value as the parser stored it (8-bit bytes surrogate-escaped).

    Encoded words are decoded with the superset of their charset; adjacent words
    in one charset are joined before decoding, since mailers split a long subject
    in the middle of a multibyte character. Raw 8-bit text (RFC 6532 UTF-8, or a
    legacy mailer's local charset) is tried as UTF-8, then as the `hints`.
    Returns (text, repair notes)."""
    value = _FOLDING.sub(" ", raw or "")
    chunks: list[tuple[str | None, bytes]] = []  # (charset or None for literal text, bytes)
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        # RFC 2047 6.2: whitespace between two encoded words is not text.
        if between and not (between.isspace() and chunks and chunks[-1][0] is not None):
            chunks.append((None, between.encode("utf-8", "surrogateescape")))
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 language suffix
        data = _word_bytes(match.group(2), match.group(3))
        if chunks and chunks[-1][0] is not None and chunks[-1][0].lower() == charset.lower():
            chunks[-1] = (chunks[-1][0], chunks[-1][1] + data)
        else:
            chunks.append((charset, data))
        position = match.end()
    if position < len(value):
        chunks.append((None, value[position:].encode("utf-8", "surrogateescape")))
    parts, notes = [], []
    for charset, data in chunks:
        if charset is None:
            try:
                parts.append(data.decode("utf-8"))
                continue
            except UnicodeDecodeError:
                text, note = decode_bytes(data, None, hints=hints)
        else:
            text, note = decode_bytes(data, charset)
        parts.append(text)
        if note:
            notes.append(note)
    return "".join(parts), notes


def part_text(part: Message) -> tuple[str, str]:
    """A MIME part's text, decoded with its charset's superset, newlines made "\\n"; and a repair note."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken transfer encoding still gives the raw text
        payload = None
    if payload is None:
        raw = part.get_payload()
        payload = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    text, note = decode_bytes(payload, part.get_param("charset"))
    return text.replace("\r\n", "\n").replace("\r", "\n"), note
