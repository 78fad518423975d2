"""The main pages walked in Spanish: no English sentence of ours may show through.

Each page is read as a person reads it (tests/accounts/catalogs.py): a msgid of
ours whose Spanish differs, found verbatim, fails the walk and names the page.
"""

import re

import pytest
from django.contrib.auth.models import Group

from accounts.models import UserPreferences
from conversations.models import Author, Direction
from helpdesk import roles
from kpis.models import SurveyKind, SurveyRequest
from kpis.services import survey_link_token
from tests.accounts.catalogs import untranslated_on_page
from tests.channels_adapters.webchat_support import SITE, webchat_channel
from tests.factories import CaseFactory, ChannelFactory, CustomerFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db


def spanish_user(**kwargs):
    user = UserFactory(**kwargs)
    UserPreferences.objects.create(user=user, language="es")
    return user


@pytest.fixture
def world():
    channel = ChannelFactory(name="Tienda API")
    customer = CustomerFactory(name="Lucía Pérez")
    case = CaseFactory(thread=customer.thread, origin_channel=channel, subject="Pedido 1234")
    MessageFactory(case=case, body="Hola, mi pedido no ha llegado.")
    MessageFactory(case=case, direction=Direction.OUT, author=Author.AGENT, body="Lo miramos ahora mismo.")
    survey = SurveyRequest.objects.create(
        kind=SurveyKind.CSAT,
        case=case,
        customer=customer,
        channel=channel,
        status=SurveyRequest.Status.SENT,
        created_at=case.opened_at,
        send_after=case.opened_at,
    )
    return {"channel": channel, "case": case, "survey": survey}


def assert_spanish(response, page: str):
    assert response.status_code == 200, (page, response.status_code)
    html = response.content.decode()
    lang = re.search(r"<html[^>]*\blang=\"([^\"]+)\"", html)
    assert lang and lang.group(1).startswith("es"), (page, lang and lang.group(1))
    missing = untranslated_on_page(html)
    assert not missing, f"{page} shows English: " + "; ".join(missing)


def test_public_pages_follow_accept_language(client, world):
    spanish = {"HTTP_ACCEPT_LANGUAGE": "es-ES,es;q=0.9,en;q=0.5"}
    assert_spanish(client.get("/login/", **spanish), "login")
    survey_url = f"/survey/{survey_link_token(request=world['survey'])}/"
    assert_spanish(client.get(survey_url, **spanish), "survey page")
    chat = webchat_channel()
    frame = client.get(f"/widget/{chat.key}/frame/?origin={SITE}", **spanish)
    assert_spanish(frame, "web-chat frame")


@pytest.mark.parametrize(
    ("page", "url"),
    [
        ("inbox list", "/inbox/"),
        ("a case", "/inbox/case/{case}/"),
        ("mentions", "/inbox/mentions/"),
        ("API tokens", "/account/tokens/"),
        ("my settings", "/account/settings/"),
    ],
)
def test_an_agent_works_in_spanish(client, world, page, url):
    client.force_login(spanish_user(username="lucia"))
    # No Accept-Language at all: the stored choice alone turns the page Spanish.
    assert_spanish(client.get(url.format(case=world["case"].pk)), page)


def test_a_supervisor_and_an_admin_in_spanish(client, world):
    boss = spanish_user(username="jefa", role=roles.SUPERVISORS)
    client.force_login(boss)
    assert_spanish(client.get("/dashboard/"), "dashboard")
    assert_spanish(client.get("/dashboard/channels/"), "scorecard")

    admin = spanish_user(username="raiz", is_staff=True, is_superuser=True)
    admin.groups.add(Group.objects.get_or_create(name=roles.ADMINS)[0])
    client.force_login(admin)
    assert_spanish(client.get("/admin/"), "admin index")
    channel = world["channel"]
    assert_spanish(
        client.get(f"/admin/channels_adapters/channel/{channel.pk}/change/"), "channel change page"
    )
    assert_spanish(client.get("/admin/channels_adapters/channel/"), "channel list")
