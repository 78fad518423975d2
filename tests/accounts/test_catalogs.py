"""Every string of ours is in a Spanish catalog, translated, and not a fuzzy guess.

makemessages runs on a copy of the project (the working tree is never touched),
then every catalog it wrote is read back: an entry without Spanish, or one that
makemessages only guessed (fuzzy), fails with its msgid and where it comes from.
"""

import shutil
import subprocess
import sys

import pytest

from tests.accounts.catalogs import ROOT, catalog_paths

pytestmark = pytest.mark.skipif(shutil.which("msgattrib") is None, reason="GNU gettext is not installed")

IGNORED = {".venv", ".git", "node_modules", "staticfiles", "media", "db.sqlite3", "tests", "bench"}
# The same call a developer makes to refresh the catalogs (docs/i18n.md).
MAKEMESSAGES = ["makemessages", "-l", "es", "--no-obsolete", *(f"--ignore={d}" for d in sorted(IGNORED))]


def _entries(po, *flags) -> list[str]:
    out = subprocess.run(
        ["msgattrib", *flags, "--no-wrap", str(po)], capture_output=True, text=True, check=True
    )
    blocks = [
        b for b in out.stdout.split("\n\n") if "\nmsgid " in "\n" + b and 'msgid ""\nmsgstr ""' not in b
    ]
    return [" ".join(line for line in b.splitlines() if line.startswith(("#:", "msgid"))) for b in blocks]


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
        for po in sorted(copy.glob(f"**/locale/es/LC_MESSAGES/{domain}.po")):
            where = po.relative_to(copy)
            problems += [f"{where}: untranslated: {e}" for e in _entries(po, "--untranslated")]
            problems += [f"{where}: fuzzy: {e}" for e in _entries(po, "--only-fuzzy")]
    assert not problems, "\n".join(problems[:50])


def test_catalogs_compile_cleanly():
    for po in catalog_paths() + catalog_paths("djangojs"):
        subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(po)], check=True, capture_output=True)
