from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog

from channels_adapters.views import webhook
from helpdesk.views import healthz, readyz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("hooks/<slug:key>/", webhook, name="webhook"),
    path("widget/", include("channels_adapters.webchat.urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("kpis.urls")),  # api/v1/kpis/, dashboard/, survey/
    path("api/v1/", include("api.urls")),
    path("account/", include("api.account_urls")),
    path("account/", include("accounts.urls")),  # /account/settings/
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("inbox/", include("conversations.urls")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("commitments/", include("commitments.urls")),
    path("outreach/", include("outreach.urls")),
    path("automation/", include("automation.urls")),
    path("help/", include("knowledge.urls")),  # public help center (knowledge app)
    path("customers/", include("privacy.urls")),  # customers directory, export, erasure
    path("", RedirectView.as_view(url="/inbox/", permanent=False), name="home"),
]
if settings.HELPDESK_SANDBOX:
    # The demo's stand-in provider (helpdesk/sandbox.py): never mounted in production.
    urlpatterns.insert(0, path("sandbox/", include("helpdesk.sandbox")))
