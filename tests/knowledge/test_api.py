"""GET /api/v1/kb/search/ and /api/v1/kb/articles/: shape, roles, errors, query counts."""

import pytest

from knowledge.models import Article, ArticleStatus
from tests.api.conftest import client_for, error_of
from tests.knowledge.factories import ArticleFactory


@pytest.fixture(autouse=True)
def _generous_rates(settings):
    settings.HELPDESK_API = {**settings.HELPDESK_API, "RATE_PER_TOKEN": None, "RATE_PER_IP": None}


@pytest.fixture
def api(org):
    return {name: client_for(org[name]) for name in ("ana", "boss")}


def test_search_answers_best_first_in_the_contract_shape(api, kb, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = api["ana"].get("/api/v1/kb/search/", {"q": "olvidé mi contraseña", "lang": "es"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["id"] == kb["restablecer-la-contrasena"].pk
    assert set(results[0]) == {"id", "title", "url", "language", "score"}
    assert results[0]["url"].endswith("/help/es/restablecer-la-contrasena/")
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_search_detects_the_language_when_not_given(api, kb):
    results = api["ana"].get("/api/v1/kb/search/", {"q": "where is my package"}).json()["results"]
    assert results[0]["language"] == "en" and results[0]["id"] == kb["where-is-my-order"].pk


def test_search_needs_a_question_and_a_known_language(api, kb):
    error = error_of(api["ana"].get("/api/v1/kb/search/", {"lang": "fr", "q": ""}))
    assert error["code"] == "invalid" and set(error["fields"]) == {"q", "lang"}


def test_search_needs_credentials(client, kb):
    response = client.get("/api/v1/kb/search/", {"q": "refund"})
    assert response.status_code == 401 and error_of(response)["code"]


def test_drafts_never_show_in_search(api, db):
    ArticleFactory(title="Secret upcoming sale", status=ArticleStatus.DRAFT)
    assert api["boss"].get("/api/v1/kb/search/", {"q": "upcoming sale", "lang": "en"}).json()["results"] == []


def test_supervisor_creates_publishes_and_reads_articles(api, org, django_assert_max_num_queries):
    created = api["boss"].post(
        "/api/v1/kb/articles/",
        {"title": "Opening hours", "language": "en", "body": "We answer **9 to 18**.", "status": "draft"},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["slug"] == "opening-hours" and "<strong>9 to 18</strong>" in body["html"]
    assert body["author"] == org["boss"].pk
    changed = api["boss"].patch(f"/api/v1/kb/articles/{body['id']}/", {"status": "published"})
    assert changed.status_code == 200 and changed.json()["status"] == "published"
    hits = api["boss"].get("/api/v1/kb/search/", {"q": "opening hours", "lang": "en"}).json()["results"]
    assert hits[0]["id"] == body["id"]
    for n in range(5):
        ArticleFactory(title=f"Extra {n}")
    with django_assert_max_num_queries(6):
        listed = api["boss"].get("/api/v1/kb/articles/", {"lang": "en", "page_size": 3}).json()
    assert len(listed["results"]) == 3 and listed["next"]


def test_an_agent_may_only_propose_a_draft(api):
    proposed = api["ana"].post(
        "/api/v1/kb/articles/",
        {"title": "Gift cards", "language": "en", "body": "Soon.", "status": "published"},
    )
    assert proposed.status_code == 201 and proposed.json()["status"] == "draft"
    article_id = proposed.json()["id"]
    assert error_of(api["ana"].get("/api/v1/kb/articles/"))["code"]
    refused = api["ana"].patch(f"/api/v1/kb/articles/{article_id}/", {"status": "published"})
    assert refused.status_code == 403
    assert Article.objects.get(pk=article_id).status == "draft"


def test_bad_article_input_is_a_400_that_changes_nothing(api):
    ArticleFactory(title="Taken", slug="taken")
    response = api["boss"].post("/api/v1/kb/articles/", {"title": "Taken", "language": "en", "body": "x"})
    error = error_of(response)
    assert response.status_code == 400 and "slug" in error["fields"]
    missing = error_of(api["boss"].post("/api/v1/kb/articles/", {"language": "de"}))
    assert {"title", "body", "language"} <= set(missing["fields"])
    assert Article.objects.count() == 1


def test_the_schema_documents_the_kb_endpoints(client, db):
    schema = client.get("/api/v1/schema/", headers={"Accept": "application/json"})
    text = schema.content.decode()
    assert "/api/v1/kb/search/" in text and "/api/v1/kb/articles/{id}/" in text


def test_a_nul_in_the_question_is_a_400_not_a_database_error(api, kb):
    response = api["ana"].get("/api/v1/kb/search/", {"q": "pass\x00word"})
    assert response.status_code == 400 and "q" in error_of(response)["fields"]
