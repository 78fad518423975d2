"""Included under /api/v1/ by api/urls.py (one line)."""

from django.urls import path

from api.views import commitments as api

urlpatterns = [
    path("commitments/", api.CommitmentListView.as_view(), name="commitments"),
    path(
        "customers/<int:pk>/commitments/",
        api.CustomerCommitmentListView.as_view(),
        name="customer_commitments",
    ),
]
