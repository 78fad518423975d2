from django.urls import path

from conversations import attachment_views, views

app_name = "inbox"

urlpatterns = [
    path("", views.inbox, name="list"),
    path("mentions/", views.mentions, name="mentions"),
    path("customers/", views.customer_search, name="customer_search"),
    path("case/<int:pk>/", views.case_detail, name="case"),
    path("case/<int:pk>/next/", views.case_next, name="case_next"),
    path("case/<int:pk>/read/", views.case_read, name="case_read"),
    path("case/<int:pk>/reply/", views.case_reply, name="case_reply"),
    path("case/<int:pk>/assign/", views.case_assign, name="case_assign"),
    path("case/<int:pk>/status/", views.case_status, name="case_status"),
    path("case/<int:pk>/priority/", views.case_priority, name="case_priority"),
    path("case/<int:pk>/labels/", views.case_labels, name="case_labels"),
    path("case/<int:pk>/call/", views.case_call_log, name="case_call_log"),
    path("case/<int:pk>/merge/", views.case_merge, name="case_merge"),
    path("message/<int:pk>/retry/", views.message_retry, name="message_retry"),
    path(
        "attachment/<int:message_id>/<int:index>/",
        attachment_views.attachment_download,
        name="attachment",
    ),
]
