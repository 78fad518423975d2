"""The dashboard's bot figures: deflection and handoff rates, the top unanswered questions."""

import itertools

import pytest
from django.utils import timezone

from channels_adapters.base import Sender
from conversations.services import receive_inbound
from knowledge.selectors import bot_figures
from tests.factories import ChannelFactory, UserFactory

pytestmark = pytest.mark.django_db
_ids = itertools.count(1)


@pytest.fixture
def say(run_on_commit, take_bot_turns):
    """A customer's message committed, then the bot's queued turn taken (as the worker would)."""

    def say(channel, address, text):
        sender = Sender("api", address)
        run_on_commit(
            receive_inbound, channel=channel, sender=sender, external_id=f"d{next(_ids)}", text=text
        )
        take_bot_turns()

    return say


def test_bot_figures_on_the_dashboard(client, kb, say, django_assert_max_num_queries):
    channel = ChannelFactory(settings={"bot": {"mode": "always"}})
    say(channel, "a", "How do I reset my password?")
    say(channel, "a", "yes")  # resolved by the bot
    say(channel, "b", "Do you sell gift cards?")  # handed over, unanswered
    say(channel, "c", "do you sell gift cards")  # the same question again
    say(channel, "d", "Where is my package?")  # still waiting for feedback
    today = timezone.localdate()
    figures = bot_figures(start=today, end=today + timezone.timedelta(days=1))
    assert figures["conversations"] == 4
    assert figures["deflection_rate"] == 0.25 and figures["handoff_rate"] == 0.5
    [top] = figures["unanswered"]
    assert top["times"] == 2 and top["normalized"] == "do you sell gift cards"

    client.force_login(UserFactory(role="supervisors"))
    period = {"from": today.isoformat(), "to": today.isoformat()}
    with django_assert_max_num_queries(25):
        html = client.get("/dashboard/", period).content.decode()
    assert 'data-kpi="bot_deflection_rate"' in html and "25 %" in html and "50 %" in html
    assert "Do you sell gift cards?" in html or "do you sell gift cards" in html
