from django.urls import path

from kpis import views

app_name = "kpis"

urlpatterns = [
    path("api/v1/kpis/", views.KpiView.as_view(), name="api"),
    path("dashboard/", views.dashboard_view, name="dashboard"),
    path("dashboard/<slug:table>.csv", views.dashboard_csv, name="dashboard_csv"),
    path("survey/<str:token>/", views.survey_page, name="survey"),
]
