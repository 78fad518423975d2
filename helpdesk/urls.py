from django.contrib import admin
from django.urls import path

from channels_adapters.views import webhook
from helpdesk.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("hooks/<slug:key>/", webhook, name="webhook"),
    path("healthz", healthz, name="healthz"),
]
