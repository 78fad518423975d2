from django.contrib import admin
from django.urls import path

from channels_adapters.views import webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("hooks/<slug:key>/", webhook, name="webhook"),
]
