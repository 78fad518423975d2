"""Read-only directories (teams, agents, labels, canned responses, survey answers) and
channel configuration for admins."""

from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from api.permissions import IsAdmin
from api.schema import example
from api.serializers.cases import LabelSerializer
from api.serializers.directory import (
    AgentSerializer,
    CannedResponseSerializer,
    ChannelSerializer,
    ChannelUpdateSerializer,
    SurveyAnswerQuerySerializer,
    SurveyAnswerSerializer,
    TeamSerializer,
)
from api.views.base import ApiMixin, not_found
from channels_adapters import configuration
from channels_adapters.models import Channel
from conversations.models import Label, Team
from conversations.selectors import agents_queryset, canned_responses_visible
from conversations.visibility import cases_visible_to
from kpis.models import SurveyAnswer

TEAM_EXAMPLE = {"id": 2, "name": "Billing", "members": [5, 6]}
AGENT_EXAMPLE = {"id": 5, "username": "ana", "first_name": "Ana", "last_name": "Ruiz", "role": "agent",
                 "teams": [2]}  # fmt: skip
CHANNEL_EXAMPLE = {
    "id": 1,
    "kind": "api",
    "name": "Shop backend (API)",
    "key": "Yq3r0dWmZ0p2b2lEcHhQ",
    "is_active": True,
    "monthly_cost": 0.0,
    "settings": {},
    "credential_keys_set": ["callback_url", "secret"],
    "webhook_url": "https://help.example.com/hooks/Yq3r0dWmZ0p2b2lEcHhQ/",
    "created_at": "2026-11-01T08:00:00Z",
}


def _list(view, request, queryset, serializer):
    rows = view.paginate_queryset(queryset)
    return view.get_paginated_response(serializer(rows, many=True).data)


class TeamListView(ApiMixin, GenericAPIView):
    serializer_class = TeamSerializer

    @extend_schema(
        tags=["directory"],
        summary="List teams",
        responses=TeamSerializer(many=True),
        examples=[example("Teams", (TEAM_EXAMPLE))],
    )
    def get(self, request):
        return _list(self, request, Team.objects.prefetch_related("members"), TeamSerializer)


class TeamDetailView(ApiMixin, GenericAPIView):
    serializer_class = TeamSerializer

    @extend_schema(
        tags=["directory"],
        summary="Read a team",
        responses=TeamSerializer,
        examples=[example("A team", TEAM_EXAMPLE)],
    )
    def get(self, request, pk):
        team = Team.objects.prefetch_related("members").filter(pk=pk).first()
        if team is None:
            not_found(_("No such team."))
        return Response(TeamSerializer(team).data)


def _agents():
    return agents_queryset().prefetch_related("groups", "teams")


class AgentListView(ApiMixin, GenericAPIView):
    serializer_class = AgentSerializer

    @extend_schema(
        tags=["directory"],
        summary="List agents",
        description="Everyone who works the inbox: agents, supervisors and admins.",
        responses=AgentSerializer(many=True),
        examples=[example("Agents", (AGENT_EXAMPLE))],
    )
    def get(self, request):
        return _list(self, request, _agents(), AgentSerializer)


class AgentDetailView(ApiMixin, GenericAPIView):
    serializer_class = AgentSerializer

    @extend_schema(
        tags=["directory"],
        summary="Read an agent",
        responses=AgentSerializer,
        examples=[example("An agent", AGENT_EXAMPLE)],
    )
    def get(self, request, pk):
        agent = _agents().filter(pk=pk).first()
        if agent is None:
            not_found(_("No such agent."))
        return Response(AgentSerializer(agent).data)


class LabelListView(ApiMixin, GenericAPIView):
    serializer_class = LabelSerializer

    @extend_schema(
        tags=["directory"],
        summary="List labels",
        responses=LabelSerializer(many=True),
        examples=[example("Labels", ({"id": 1, "name": "shipping", "color": "#2563eb"}))],
    )
    def get(self, request):
        return _list(self, request, Label.objects.all(), LabelSerializer)


class CannedResponseListView(ApiMixin, GenericAPIView):
    serializer_class = CannedResponseSerializer

    @extend_schema(
        tags=["directory"],
        summary="List canned responses",
        description="Those for everyone and those of this user's teams; `{{customer.first_name}}` "
        "and the other placeholders are left for the caller to fill.",
        responses=CannedResponseSerializer(many=True),
        examples=[
            example(
                "Canned responses",
                ({"id": 1, "shortcut": "hello", "title": "Greeting", "team": None,
                       "body": "Hi {{customer.first_name}}, thanks for reaching out!"}),
            )
        ],
    )  # fmt: skip
    def get(self, request):
        return _list(self, request, canned_responses_visible(user=request.user), CannedResponseSerializer)


class SurveyAnswerListView(ApiMixin, GenericAPIView):
    serializer_class = SurveyAnswerSerializer
    keyset_field = "answered_at"

    @extend_schema(
        tags=["directory"],
        summary="List survey answers (CSAT, NPS, CES)",
        description="Answers on the cases this user may see, newest first.",
        parameters=[SurveyAnswerQuerySerializer],
        responses=SurveyAnswerSerializer(many=True),
        examples=[
            example(
                "Answers",
                ({"id": 3, "kind": "csat", "score": 5, "case": 310, "customer": 42, "channel": 1,
                       "agent": 5, "team": 2, "via": "message", "answered_at": "2026-11-30T11:00:00Z"}),
            )
        ],
    )  # fmt: skip
    def get(self, request):
        query = SurveyAnswerQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        answers = SurveyAnswer.objects.filter(
            Exists(cases_visible_to(user=request.user).filter(pk=OuterRef("case_id")))
        )
        for name in ("kind", "case", "customer"):
            if name in query.validated_data:
                answers = answers.filter(**{name: query.validated_data[name]})
        return _list(self, request, answers, SurveyAnswerSerializer)


class ChannelListView(ApiMixin, GenericAPIView):
    permission_classes = [IsAdmin]
    serializer_class = ChannelSerializer

    @extend_schema(
        tags=["channels"],
        summary="List channels (admins)",
        description="Credentials are never returned: `credential_keys_set` names the keys that have a value.",
        responses=ChannelSerializer(many=True),
        examples=[example("Channels", (CHANNEL_EXAMPLE))],
    )
    def get(self, request):
        return _list(self, request, Channel.objects.all(), ChannelSerializer)

    @extend_schema(
        tags=["channels"],
        summary="Create a channel (admins)",
        description="The same checks as in admin: an active channel needs every credentials key of "
        "its kind (DESIGN.md's table); its webhook URL is in the answer.",
        request=ChannelSerializer,
        responses={201: ChannelSerializer},
        examples=[
            example(
                "An API channel",
                {"kind": "api", "name": "Shop backend (API)",
                 "credentials": {"secret": "s3cret", "callback_url": "https://shop.example/hooks/helpdesk"}},
                request=True,
            ),
            example("Created", CHANNEL_EXAMPLE, status=201),
        ],
    )  # fmt: skip
    def post(self, request):
        data = ChannelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel = configuration.channel_create(**data.validated_data)
        return Response(ChannelSerializer(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailView(ApiMixin, GenericAPIView):
    permission_classes = [IsAdmin]
    serializer_class = ChannelSerializer

    def _channel(self, pk):
        channel = Channel.objects.filter(pk=pk).first()
        if channel is None:
            not_found(_("No such channel."))
        return channel

    @extend_schema(
        tags=["channels"],
        summary="Read a channel (admins)",
        responses=ChannelSerializer,
        examples=[example("A channel", CHANNEL_EXAMPLE)],
    )
    def get(self, request, pk):
        return Response(ChannelSerializer(self._channel(pk)).data)

    @extend_schema(
        tags=["channels"],
        summary="Change a channel (admins)",
        description="Credentials sent are merged into the stored ones (null removes a key); the kind "
        "cannot change.",
        request=ChannelUpdateSerializer(partial=True),
        responses=ChannelSerializer,
        examples=[
            example("Switch off", {"is_active": False}, request=True),
            example("Changed", {**CHANNEL_EXAMPLE, "is_active": False}),
        ],
    )
    def patch(self, request, pk):
        channel = self._channel(pk)
        data = ChannelUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        channel = configuration.channel_update(channel=channel, **data.validated_data)
        return Response(ChannelSerializer(channel).data)
