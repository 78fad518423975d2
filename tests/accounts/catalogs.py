"""Our Spanish catalogs read as the test sees them, and the text a person reads on a page.

`untranslated_on_page` is the Spanish walk's check: a page shown in Spanish must not
contain, verbatim, an English sentence of ours whose Spanish differs.
"""

from __future__ import annotations

import gettext
import re
import subprocess
import tempfile
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
_SKIP_DIRS = {".venv", "node_modules", ".git", "staticfiles", "media"}


def catalog_paths(domain: str = "django") -> list[Path]:
    """The root catalog and every app's own (<app>/locale/es/LC_MESSAGES/)."""
    found = [ROOT / "locale" / "es" / "LC_MESSAGES" / f"{domain}.po"]
    for child in sorted(ROOT.iterdir()):
        if child.is_dir() and child.name not in _SKIP_DIRS:
            found.append(child / "locale" / "es" / "LC_MESSAGES" / f"{domain}.po")
    return [path for path in found if path.exists()]


def read_catalog(po: Path) -> dict[str, str]:
    """msgid -> msgstr of one .po file (plural forms: the singular), through GNU msgfmt."""
    with tempfile.NamedTemporaryFile(suffix=".mo") as mo:
        subprocess.run(["msgfmt", "--check", "-o", mo.name, str(po)], check=True, capture_output=True)
        with open(mo.name, "rb") as handle:
            raw = gettext.GNUTranslations(handle)._catalog
    entries = {}
    for key, value in raw.items():
        if isinstance(key, tuple):  # (msgid, plural index)
            if key[1] != 0:
                continue
            key = key[0]
        if not key:
            continue  # the header
        entries[key.split("\x04", 1)[-1]] = value  # msgctxt\x04msgid
    return entries


@cache
def english_sentences() -> tuple[tuple[str, re.Pattern], ...]:
    """Our msgids whose Spanish differs, each with the pattern it would show as on a page."""
    sentences = {}
    for po in catalog_paths():
        for msgid, msgstr in read_catalog(po).items():
            if msgstr and msgstr != msgid:
                sentences[msgid] = msgstr
    # A language picker names each language in that language ("English", "Español"), on purpose.
    own_names = {name for _code, name in settings.LANGUAGES}
    patterns = []
    for msgid in sentences:
        if msgid in own_names:
            continue
        visible = _visible_form(msgid)
        if len(visible) < 3 or not re.search(r"[A-Za-z]{3}", visible):
            continue
        literal = re.split(_PLACEHOLDER, visible)
        if len(literal) > 1 and sum(len(re.sub(r"\W", "", piece)) for piece in literal) < 6:
            continue  # "%(name)s on %(system)s": too little of it is ours to recognise
        pieces = [re.escape(piece) for piece in literal]
        # A placeholder stands for a name, a number, a date: a few words, never a sentence.
        body = r"[^.!?]{1,80}?".join(piece.replace(r"\ ", r"\s+") for piece in pieces)
        if len(visible.split()) == 1 or len(visible) < 12:
            # A word or two ("Open", "Save") is reported only as a whole text or label.
            pattern = re.compile(rf"^\W*{body}\W*$")
        else:
            pattern = re.compile(rf"(?<![\w]){body}(?![\w])")
        patterns.append((msgid, pattern))
    return tuple(patterns)


_PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]|\{\w*\}")


def _visible_form(msgid: str) -> str:
    # What a browser shows of a msgid: no markup, entities read, spaces folded.
    text = re.sub(r"<[^>]+>", " ", msgid)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("&nbsp;", " ")
    return " ".join(text.split()).strip()


class _TextParser(HTMLParser):
    """Text nodes and the attributes a person reads or hears (title, placeholder, aria-label...)."""

    SKIP = {"script", "style", "code", "pre", "textarea"}
    ATTRIBUTES = ("title", "placeholder", "aria-label", "alt", "label")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skipping += 1
        values = dict(attrs)
        if tag == "img" and "/admin/img/" in (values.get("src") or ""):
            values.pop("alt", None)  # Django admin's own icons: alt="Search" is Django's, not ours
        for name in self.ATTRIBUTES:
            if values.get(name):
                self.texts.append(values[name])
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.texts.append(values["value"])

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.texts.append(data)


def visible_texts(html: str) -> list[str]:
    parser = _TextParser()
    parser.feed(html)
    return [" ".join(text.split()) for text in parser.texts]


def untranslated_on_page(html: str) -> list[str]:
    """Each English sentence of ours found on the page, with the text it was found in."""
    texts = visible_texts(html)
    whole = " ".join(texts)
    found = []
    for msgid, pattern in english_sentences():
        if pattern.pattern.startswith("^"):
            hit = next((text for text in texts if pattern.search(text)), None)
        else:
            match = pattern.search(whole)
            hit = match.group(0) if match else None
        if hit:
            found.append(f"{msgid!r} in {hit[:120]!r}")
    return found
