from django.urls import path

from automation import views

app_name = "automation"

urlpatterns = [
    path("case/<int:pk>/macro/", views.case_macro_apply, name="case_macro"),
    path("tools/", views.inbox_tools, name="tools"),
    path("bulk/", views.cases_bulk, name="bulk"),
    path("presence/away/", views.presence_away, name="presence_away"),
    path("presence/heartbeat/", views.presence_heartbeat, name="presence_heartbeat"),
]
