from django.urls import path

from privacy import views

app_name = "privacy"

urlpatterns = [
    path("", views.customer_list, name="customers"),
    path("<int:pk>/", views.customer_detail, name="customer"),
    path("<int:pk>/edit/", views.customer_edit_view, name="customer_edit"),
    path("<int:pk>/identities/", views.identity_add_view, name="identity_add"),
    path("<int:pk>/identities/<int:identity_id>/remove/", views.identity_remove_view, name="identity_remove"),
    path("<int:pk>/merge/", views.customer_merge_view, name="customer_merge"),
    path("<int:pk>/export/", views.customer_export_view, name="customer_export"),
    path("<int:pk>/legal-hold/", views.customer_legal_hold_view, name="customer_legal_hold"),
    path("<int:pk>/erase/", views.customer_erase_view, name="customer_erase"),
    path("merges/<int:merge_id>/unmerge/", views.customer_unmerge_view, name="customer_unmerge"),
]
