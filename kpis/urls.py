from django.urls import path

from kpis import views

app_name = "kpis"

urlpatterns = [
    path("api/v1/kpis/", views.KpiView.as_view(), name="api"),
    path("api/v1/kpis/channels/", views.ChannelScorecardView.as_view(), name="api_channels"),
    path("dashboard/", views.dashboard_view, name="dashboard"),
    path("dashboard/channels/", views.scorecard_view, name="scorecard"),
    path("dashboard/channels/scorecard.csv", views.scorecard_csv, name="scorecard_csv"),
    path("dashboard/<slug:table>.csv", views.dashboard_csv, name="dashboard_csv"),
    path("survey/<str:token>/", views.survey_page, name="survey"),
]
