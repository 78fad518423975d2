"""Under /api/v1/kb/ (one include line in api/urls.py)."""

from django.urls import path

from knowledge import api_views as api

urlpatterns = [
    path("search/", api.KbSearchView.as_view(), name="kb_search"),
    path("articles/", api.ArticleListView.as_view(), name="kb_articles"),
    path("articles/<int:pk>/", api.ArticleDetailView.as_view(), name="kb_article"),
]
