import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

from helpdesk.request_threads import RequestThreadPool, SyncHTTP

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
# Django must be set up before the consumers (and their models) are imported.
# Static files (a few CSS/JS files and the admin's) are answered before Django's
# middleware chain; a reverse proxy or CDN may serve /static/ in front of it.
django_asgi_app = ASGIStaticFilesHandler(get_asgi_application())

from django.conf import settings  # noqa: E402

# Requests' sync code runs on reused threads, not one started per request;
# providers' webhooks take Django's sync path in one thread crossing.
django_asgi_app = RequestThreadPool(
    SyncHTTP(django_asgi_app, prefix="/hooks/"), size=settings.ASGI_REQUEST_THREADS
)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from helpdesk.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
