"""What customers send cannot send the agent elsewhere, nor tell the sender they read it."""

import pytest

from conversations.templatetags.inbox import email_html_sanitize, safe_url
from tests.factories import CaseFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/\\evil.example/x.png",
        "\\\\evil.example/x.png",
        "//evil.example/x.png",
        "/\t/evil.example/x.png",
        "/\n/evil.example/x.png",
        "\\/evil.example/x.png",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https:///x.png",
    ],
)
def test_safe_url_drops_what_a_browser_would_read_as_another_host_or_script(url):
    assert safe_url(url) == ""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://files.example/a.png", "https://files.example/a.png"),
        ("/inbox/attachment/1/0/", "/inbox/attachment/1/0/"),
        ("media/a.png", "/media/a.png"),
    ],
)
def test_safe_url_keeps_web_and_same_site_links(url, expected):
    assert safe_url(url) == expected


def test_remote_images_are_not_requested_until_asked():
    html, deferred = email_html_sanitize(
        '<p>Hi</p><img src="https://track.example/p.gif?u=1&amp;m=2" alt="a &quot;b&quot; > c" width="1">'
        '<img src="/inbox/logout/"><p>&lt;img src="https://t.example/x"&gt;</p>'
    )

    assert deferred
    assert ' src="https://track.example' not in html and ' src="/inbox' not in html
    assert 'data-remote-src="https://track.example/p.gif?u=1&amp;m=2"' in html
    assert 'data-remote-src="/inbox/logout/"' in html
    assert 'referrerpolicy="no-referrer"' in html
    # Text that only looks like a tag stays text.
    assert "&lt;img src=" in html


def test_a_src_inside_another_attributes_value_cannot_break_out_of_it():
    """alt="a src=" once made the rewrite close alt's quote early: onerror ran."""
    payload = '<img alt="a src=" src="https://t.example/x.gif onerror=alert(1) src=https://t.example/y.gif ">'
    html, deferred = email_html_sanitize(payload)

    from html.parser import HTMLParser

    seen = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            seen.append(dict(attrs))

    Tags().feed(html)
    [attrs] = seen
    assert deferred
    assert set(attrs) == {"alt", "referrerpolicy", "data-remote-src"}
    assert attrs["alt"] == "a src="


def test_inline_images_we_store_show_from_the_authorized_view(client, settings, tmp_path):
    from conversations.attachments import attachment_save

    settings.MEDIA_ROOT = str(tmp_path)
    stored = {**attachment_save(content=b"GIF89a", name="logo.gif"), "content_id": "logo@x"}
    case = CaseFactory()
    message = MessageFactory(
        case=case, body="", html=f'<p>Hi</p><img src="{stored["url"]}">', attachments=[stored]
    )
    client.force_login(UserFactory())

    page = client.get(f"/inbox/case/{case.pk}/").content.decode()

    assert f'src="/inbox/attachment/{message.pk}/0/"' in page
    assert "data-load-images" not in page


def test_a_sender_cannot_plant_their_own_deferred_image_attribute():
    html, deferred = email_html_sanitize(
        '<p data-remote-src="https://x.example/">Hi</p><img alt="no source">'
    )

    assert not deferred and "data-remote-src" not in html


def test_email_with_remote_images_shows_the_load_button_and_no_src(client):
    agent = UserFactory()
    case = CaseFactory()
    MessageFactory(case=case, body="", html='<p>Offer</p><img src="https://track.example/open.gif">')
    plain = MessageFactory(case=case, body="", html="<p>No pictures</p>")
    client.force_login(agent)

    html = client.get(f"/inbox/case/{case.pk}/").content.decode()

    assert ' src="https://track.example/open.gif"' not in html
    assert 'data-remote-src="https://track.example/open.gif"' in html
    assert html.count("data-load-images") == 1 and "Load remote images" in html
    assert f'id="m-{plain.pk}"' in html
