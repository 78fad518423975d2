from django.urls import path

from outreach import campaign_views, views

app_name = "outreach"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("cases/<int:pk>/start/", views.case_start, name="case_start"),
    path("cases/<int:pk>/box/", views.case_box, name="case_box"),
    path("campaigns/", campaign_views.campaign_monitor, name="campaigns"),
    path("campaigns/export.csv", campaign_views.campaign_csv, name="campaigns_csv"),
    path("campaigns/<int:pk>/<slug:action>/", campaign_views.campaign_action, name="campaign_action"),
]
