from django.urls import path

from outreach import views

app_name = "outreach"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("cases/<int:pk>/start/", views.case_start, name="case_start"),
]
