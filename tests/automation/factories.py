"""Automation test helpers on top of tests/factories.py."""

import factory

from automation.models import AssignmentMode, Rule, TeamRouting
from automation.presence import presence_connect
from channels_adapters.base import Sender
from conversations.services import receive_inbound
from tests.factories import TeamFactory, UserFactory


class TeamRoutingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TeamRouting

    team = factory.SubFactory(TeamFactory)
    mode = AssignmentMode.ROUND_ROBIN
    capacity = 2


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rule

    name = factory.Sequence(lambda n: f"Rule {n}")
    event = "case_opened"
    conditions = factory.LazyFunction(list)
    actions = factory.LazyFunction(lambda: [{"type": "note", "text": "hello"}])


def team_with_agents(n=3, *, capacity=2, mode=AssignmentMode.ROUND_ROBIN, online=True, **routing):
    routing = TeamRoutingFactory(capacity=capacity, mode=mode, **routing)
    agents = [UserFactory() for _ in range(n)]
    routing.team.members.add(*agents)
    if online:
        for agent in agents:
            presence_connect(user_id=agent.pk)
    return routing.team, agents


_counter = iter(range(10**9))


def inbound(channel, text="Hello", *, address=None, **kwargs):
    n = next(_counter)
    sender = Sender(kind="email", address=address or f"auto-{n}@example.com", name="")
    return receive_inbound(
        channel=channel, sender=sender, external_id=f"auto-{n}-{text[:10]}", text=text, **kwargs
    )
