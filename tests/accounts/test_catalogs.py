"""Every string of ours is in a Spanish catalog, translated, and not a fuzzy guess.

makemessages runs on a copy of the project (the working tree is never touched),
then every catalog it wrote is read back: an entry without Spanish in any of our
catalogs, or one that makemessages only guessed (fuzzy), fails with its msgid and
where it comes from.
"""

import shutil
import subprocess
import sys

import pytest

from tests.accounts.catalogs import ROOT, catalog_paths, read_catalog

pytestmark = pytest.mark.skipif(shutil.which("msgattrib") is None, reason="GNU gettext is not installed")

IGNORED = {".venv", ".git", "node_modules", "staticfiles", "media", "db.sqlite3", "tests", "bench"}
# The same call a developer makes to refresh the catalogs (docs/i18n.md).
MAKEMESSAGES = ["makemessages", "-l", "es", "--no-obsolete", *(f"--ignore={d}" for d in sorted(IGNORED))]


def _unquote(text: str) -> str:
    return text.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def _entries(po, flag) -> list[tuple[str, str]]:
    """(msgid, where it comes from) of each entry msgattrib selects with `flag`."""
    out = subprocess.run(
        ["msgattrib", flag, "--no-wrap", str(po)], capture_output=True, text=True, check=True
    )
    entries = []
    for block in out.stdout.split("\n\n"):
        where, parts, reading = [], [], False
        for line in block.splitlines():
            if line.startswith("#:"):
                where.append(line[2:].strip())
            elif line.startswith("msgid "):
                reading = True
                parts.append(line[len("msgid ") :].strip()[1:-1])
            elif reading and line.startswith('"'):
                parts.append(line.strip()[1:-1])
            else:
                reading = False
        msgid = _unquote("".join(parts))
        if msgid:  # not the header
            entries.append((msgid, " ".join(where)))
    return entries


def test_makemessages_finds_nothing_untranslated(tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(
        ROOT, copy, ignore=lambda d, names: [n for n in names if n in IGNORED or n.endswith(".mo")]
    )
    domains = ["django"] + (["djangojs"] if catalog_paths("djangojs") else [])
    for domain in domains:
        subprocess.run(
            [sys.executable, "manage.py", *MAKEMESSAGES, "-d", domain],
            cwd=copy,
            check=True,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "catalog-check", "HOME": str(tmp_path)},
        )
    problems = []
    for domain in domains:
        # Django merges every catalog at run time: a string Spanish in one of ours
        # (an app may keep its shared templates' strings in its own) is translated.
        translated = {k for po in catalog_paths(domain) for k, v in read_catalog(po).items() if v}
        for po in sorted(copy.glob(f"**/locale/es/LC_MESSAGES/{domain}.po")):
            where = po.relative_to(copy)
            for kind, flag in (("untranslated", "--untranslated"), ("fuzzy", "--only-fuzzy")):
                problems += [
                    f"{where}: {kind}: {msgid!r} ({origin})"
                    for msgid, origin in _entries(po, flag)
                    if msgid not in translated
                ]
    assert not problems, "\n".join(problems[:50])


def test_catalogs_compile_cleanly():
    for po in catalog_paths() + catalog_paths("djangojs"):
        subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(po)], check=True, capture_output=True)
