from django.urls import path

from channels_adapters.webchat.consumers import WidgetConsumer
from conversations.consumers import AgentConsumer

websocket_urlpatterns = [
    path("ws/agent/", AgentConsumer.as_asgi()),
    path("ws/widget/<slug:key>/", WidgetConsumer.as_asgi()),
]
