"""Regressions found reading the issue-12 change: offsets past an odd line break,
and the lone contact of a WhatsApp batch filed under two ids."""

import pytest

from channels_adapters.email.quotes import html_visible
from channels_adapters.whatsapp.adapter import _contacts, _sender


def test_quote_cut_keeps_every_word_after_a_unicode_line_separator():
    html = '<p>Thanks\u2028a lot</p>\n<p>more words</p>\n<div class="gmail_quote">On Mon, X wrote: old</div>'
    visible = html_visible(html)
    assert "more words" in visible and "old" not in visible


@pytest.mark.django_db
def test_a_single_contact_with_phone_and_bsuid_names_a_sender_given_by_neither():
    contacts = _contacts(
        {"contacts": [{"wa_id": "14155550123", "user_id": "US.123", "profile": {"name": "Ana"}}]}
    )
    sender, _ = _sender({"from": "14155550999"}, contacts, "from")
    assert sender.name == "Ana"
