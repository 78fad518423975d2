from django.urls import path

from channels_adapters.webchat import views

app_name = "webchat"

urlpatterns = [
    path("<slug:key>.js", views.loader, name="loader"),
    path("<slug:key>/frame/", views.frame, name="frame"),
    path("<slug:key>/api/session", views.session_start, name="session"),
    path("<slug:key>/api/messages", views.messages, name="messages"),
    path("<slug:key>/api/prechat", views.prechat, name="prechat"),
    path("<slug:key>/api/typing", views.typing, name="typing"),
    path("<slug:key>/api/read", views.read, name="read"),
    path("<slug:key>/api/attachments/<int:message_id>/<int:index>/", views.attachment, name="attachment"),
]
