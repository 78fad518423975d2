"""Article suggestions for the reply box: the case's latest customer message, visibility asked."""

import pytest

from channels_adapters.base import Sender
from conversations.services import receive_inbound
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def _case(team, text="I forgot my password, how do I reset it?"):
    result = receive_inbound(
        channel=ChannelFactory(), sender=Sender("api", "cust-9"), external_id="s1", text=text
    )
    case = result.message.case
    case.team = team
    case.save()
    return case


def test_suggestions_follow_the_latest_customer_message(client, kb, org, django_assert_max_num_queries):
    case = _case(org["billing"])
    client.force_login(org["ana"])
    with django_assert_max_num_queries(12):
        answer = client.get(f"/help/suggestions/case/{case.pk}/").json()
    assert answer["language"] == "en"
    assert answer["results"][0]["url"] == kb["reset-your-password"].public_url


def test_suggestions_ask_the_visibility_rule(client, kb, org):
    case = _case(org["billing"])
    client.force_login(org["bo"])  # Sales: may not see a Billing case
    assert client.get(f"/help/suggestions/case/{case.pk}/").status_code == 404
    client.logout()
    assert client.get(f"/help/suggestions/case/{case.pk}/").status_code == 302  # to the login page


def test_the_case_page_includes_the_suggestions_box(client, kb, org):
    case = _case(org["billing"])
    client.force_login(org["ana"])
    html = client.get(f"/inbox/case/{case.pk}/").content.decode()
    assert 'id="kb-suggestions"' in html and f"/help/suggestions/case/{case.pk}/" in html
    assert "knowledge/suggestions.js" in html
