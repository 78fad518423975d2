"""The public help center: server-rendered pages, search, votes, sitemap; and the admin preview."""

import pytest

from knowledge.models import Article, ArticleStatus
from knowledge.text import render_markdown
from tests.factories import UserFactory
from tests.knowledge.factories import ArticleFactory

pytestmark = pytest.mark.django_db


def test_help_root_sends_to_the_visitors_language(client, kb):
    assert client.get("/help/", headers={"Accept-Language": "es"})["Location"] == "/help/es/"
    assert client.get("/help/", headers={"Accept-Language": "de"})["Location"] == "/help/en/"


def test_home_lists_categories_with_their_articles(client, kb, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        page = client.get("/help/es/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<title>Centro de ayuda</title>" in html and '<html lang="es">' in html
    assert '<meta name="description"' in html
    assert "Pedidos y envíos" in html and "/help/es/donde-esta-mi-pedido/" in html
    assert "<script" not in html.split("Still need help?")[0]  # works with no JavaScript


def test_article_page_counts_views_links_translation_and_related(client, kb, django_assert_max_num_queries):
    article = kb["reset-your-password"]
    with django_assert_max_num_queries(12):
        page = client.get("/help/en/reset-your-password/")
    html = page.content.decode()
    assert "<title>Reset your password · Help center</title>" in html
    assert f'content="{article.summary}"' in html.replace("&#x27;", "'")
    assert "<strong>sign in</strong>" in html
    assert "/help/es/restablecer-la-contrasena/" in html  # its Spanish version
    assert "/help/en/delete-my-account/" in html  # related: same category
    assert 'name="helpful" value="yes"' in html
    article.refresh_from_db()
    assert article.view_count == 1


def test_a_helpful_vote_counts_once_per_visitor(client, kb):
    url = "/help/en/cancel-an-order/vote/"
    first = client.post(url, {"helpful": "yes"})
    assert first.status_code == 302 and first["Location"] == "/help/en/cancel-an-order/?voted=1"
    client.post(url, {"helpful": "yes"})
    client.post(url, {"helpful": "no"})
    article = Article.objects.get(slug="cancel-an-order")
    assert (article.helpful_yes, article.helpful_no) == (1, 0)
    assert "Thanks for your feedback!" in client.get(first["Location"]).content.decode()


def test_search_page_finds_articles_despite_typos_and_accents(client, kb):
    html = client.get("/help/es/search/", {"q": "olvide la contrasena"}).content.decode()
    assert "/help/es/restablecer-la-contrasena/" in html
    html = client.get("/help/en/search/", {"q": "refnd"}).content.decode()
    assert "/help/en/when-do-i-get-my-refund/" in html
    nothing = client.get("/help/en/search/", {"q": "zzzz qqqq"}).content.decode()
    assert "Nothing matches" in nothing


def test_drafts_and_unknown_languages_are_not_found(client, db):
    ArticleFactory(title="Not yet", slug="not-yet", status=ArticleStatus.DRAFT)
    assert client.get("/help/en/not-yet/").status_code == 404
    assert client.get("/help/fr/").status_code == 404


def test_sitemap_lists_only_published_articles(client, kb):
    ArticleFactory(title="Hidden", slug="hidden", status=ArticleStatus.DRAFT)
    xml = client.get("/help/sitemap.xml")
    assert xml["Content-Type"] == "application/xml"
    body = xml.content.decode()
    assert body.count("<url>") == 24 and "/help/es/pago-rechazado/" in body and "hidden" not in body


def test_markdown_is_rendered_without_anything_executable():
    html = render_markdown(
        "Hi <script>alert(1)</script> [x](javascript:alert(1)) **bold** <img src=x onerror=y>"
    )
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html
    assert "<strong>bold</strong>" in html


def test_admin_preview_renders_and_saving_makes_the_article_searchable(client):
    from knowledge.search import articles_search

    admin = UserFactory(role="admins", is_staff=True)
    client.force_login(admin)
    preview = client.post(
        "/admin/knowledge/article/preview/", {"body": "# Title\n\n*soon* <script>x</script>"}
    )
    assert preview.json()["html"].startswith("<h1>") is False  # h1 is the page's, not the body's
    assert "<em>soon</em>" in preview.json()["html"] and "<script" not in preview.json()["html"]
    added = client.post(
        "/admin/knowledge/article/add/",
        {"title": "Gift cards", "slug": "gift-cards", "language": "en", "status": "published",
         "keywords": "gift card, voucher", "summary": "", "body": "We sell **gift cards**."},
    )  # fmt: skip
    assert added.status_code == 302, added.content.decode()[:2000]
    article = Article.objects.get(slug="gift-cards")
    assert article.author == admin and "<strong>gift cards</strong>" in article.html
    assert articles_search(query="voucher", language="en")[0].article == article


def test_agents_cannot_edit_articles_in_admin(client):
    agent = UserFactory(is_staff=True)
    client.force_login(agent)
    assert client.get("/admin/knowledge/article/").status_code == 403
