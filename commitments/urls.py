from django.urls import path

from commitments import views

app_name = "commitments"

urlpatterns = [
    path("", views.commitments_board, name="board"),
    path("message/<int:message_id>/", views.commitment_mark, name="mark"),
    path("<int:pk>/close/", views.commitment_close, name="close"),
    path("customer/<int:customer_id>/pinned/", views.commitments_pinned, name="pinned"),
]
