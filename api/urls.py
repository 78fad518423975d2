"""REST API v1 under /api/v1/ (the KPI endpoint, /api/v1/kpis/, stays in kpis/urls.py)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api.views import cases, customers, directory
from api.views.base import endpoint_not_found

app_name = "api"

urlpatterns = [
    path("customers/", customers.CustomerListView.as_view(), name="customers"),
    path("customers/<int:pk>/", customers.CustomerDetailView.as_view(), name="customer"),
    path(
        "customers/<int:pk>/identities/",
        customers.CustomerIdentitiesView.as_view(),
        name="customer_identities",
    ),
    path(
        "customers/<int:pk>/identities/<int:identity_id>/",
        customers.CustomerIdentityView.as_view(),
        name="customer_identity",
    ),
    path("customers/<int:pk>/merge/", customers.CustomerMergeView.as_view(), name="customer_merge"),
    path("customers/<int:pk>/timeline/", customers.CustomerTimelineView.as_view(), name="customer_timeline"),
    path("cases/", cases.CaseListView.as_view(), name="cases"),
    path("cases/<int:pk>/", cases.CaseDetailView.as_view(), name="case"),
    path("cases/<int:pk>/replies/", cases.CaseReplyView.as_view(), name="case_replies"),
    path("cases/<int:pk>/notes/", cases.CaseNoteView.as_view(), name="case_notes"),
    path("messages/<int:pk>/", cases.MessageDetailView.as_view(), name="message"),
    path("messages/<int:pk>/retry/", cases.MessageRetryView.as_view(), name="message_retry"),
    path(
        "messages/<int:pk>/attachments/<int:index>/",
        cases.MessageAttachmentView.as_view(),
        name="message_attachment",
    ),
    path("canned-responses/", directory.CannedResponseListView.as_view(), name="canned_responses"),
    path("teams/", directory.TeamListView.as_view(), name="teams"),
    path("teams/<int:pk>/", directory.TeamDetailView.as_view(), name="team"),
    path("agents/", directory.AgentListView.as_view(), name="agents"),
    path("agents/<int:pk>/", directory.AgentDetailView.as_view(), name="agent"),
    path("labels/", directory.LabelListView.as_view(), name="labels"),
    path("channels/", directory.ChannelListView.as_view(), name="channels"),
    path("channels/<int:pk>/", directory.ChannelDetailView.as_view(), name="channel"),
    path("survey-answers/", directory.SurveyAnswerListView.as_view(), name="survey_answers"),
    path("outreach/", include("outreach.api_urls")),
    path("kb/", include("knowledge.api_urls")),  # knowledge base search and articles
    path("", include("commitments.api_urls")),  # commitments/, customers/<id>/commitments/
    path("", include("privacy.api_urls")),  # customers/<id>/export/ (GDPR archive)
    # The schema and its docs are public: they describe the API, they hold no data.
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    # Last: whatever else is asked under /api/v1/ is a JSON 404 (/api/v1/kpis/ is matched before).
    re_path(r"^(?P<rest>[\s\S]*)$", endpoint_not_found, name="not_found"),
]
