from django.urls import path

from outreach import api_views as api

urlpatterns = [
    path("", api.OutreachCreateView.as_view(), name="outreach"),
    path("<int:pk>/", api.OutreachDetailView.as_view(), name="outreach_detail"),
]
