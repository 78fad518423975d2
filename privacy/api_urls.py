"""The privacy app's REST endpoints, included under /api/v1/ by api/urls.py."""

from django.urls import path

from privacy import api_views

urlpatterns = [
    path("customers/<int:pk>/export/", api_views.CustomerExportView.as_view(), name="customer_export"),
]
