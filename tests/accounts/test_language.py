"""Which language a person is answered in: an agent's own choice, a visitor's browser,
a customer's known language, a channel's setting, else the default."""

import pytest
from django.utils import translation

from accounts.models import UserPreferences
from channels_adapters.voice.adapter import VoiceAdapter
from helpdesk.languages import customer_language
from kpis.models import SurveyRequest
from kpis.services import survey_request_send
from tests.factories import ChannelFactory, CustomerFactory, UserFactory
from tests.kpis.test_surveys import resolve_a_case

pytestmark = pytest.mark.django_db


def html_lang(response) -> str:
    return response.content.decode().split('<html lang="', 1)[1].split('"', 1)[0]


def test_public_pages_follow_accept_language_else_the_default(client):
    assert html_lang(client.get("/login/", HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9")) == "es"
    spanish = client.get("/login/", HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9").content.decode()
    assert "Iniciar sesión" in spanish or "Entrar" in spanish
    assert html_lang(client.get("/login/", HTTP_ACCEPT_LANGUAGE="fr-FR")) == "en"
    assert html_lang(client.get("/login/")) == "en"


def test_an_agent_picks_a_language_and_keeps_it_across_logins(client):
    agent = UserFactory(username="marta")
    client.force_login(agent)
    page = client.get("/account/settings/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and 'href="/account/settings/"' in page.content.decode()  # in the nav
    response = client.post("/account/settings/", {"language": "es"}, HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "Se ha guardado tu configuración." in response.content.decode()
    assert UserPreferences.objects.get(user=agent).language == "es"
    # The browser asks for English; the agent's own choice wins, on every page.
    assert html_lang(client.get("/account/tokens/", HTTP_ACCEPT_LANGUAGE="en")) == "es"
    client.logout()
    assert html_lang(client.get("/login/", HTTP_ACCEPT_LANGUAGE="en")) == "en"
    client.force_login(agent)
    assert html_lang(client.get("/account/tokens/", HTTP_ACCEPT_LANGUAGE="en")) == "es"
    # Back to following the browser.
    client.post("/account/settings/", {"language": ""})
    assert html_lang(client.get("/account/tokens/", HTTP_ACCEPT_LANGUAGE="en")) == "en"


def test_an_unknown_language_is_refused_and_nothing_changes(client):
    agent = UserFactory(username="pablo")
    UserPreferences.objects.create(user=agent, language="es")
    client.force_login(agent)
    response = client.post("/account/settings/", {"language": "xx"})
    assert response.status_code == 400
    assert UserPreferences.objects.get(user=agent).language == "es"


def test_the_stored_choice_costs_no_query_per_request(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_of_a_page(user):
        client.force_login(user)
        client.get("/account/tokens/")
        with CaptureQueriesContext(connection) as seen:
            client.get("/account/tokens/")
        return len(seen)

    chooser = UserFactory(username="ines")
    UserPreferences.objects.create(user=chooser, language="es")
    # The choice is read from the session, which the page reads anyway.
    assert queries_of_a_page(chooser) == queries_of_a_page(UserFactory(username="noe"))
    # A session from before the choice existed is filled once from the database.
    client.force_login(chooser)
    session = client.session
    del session["helpdesk_language"]
    session.save()
    assert html_lang(client.get("/account/tokens/")) == "es"
    assert client.session["helpdesk_language"] == "es"


def test_customer_language_order():
    es_channel = ChannelFactory(settings={"language": "es-ES"})
    plain = ChannelFactory()
    assert customer_language(customer=CustomerFactory(attributes={"language": "es"}), channel=plain) == "es"
    assert (
        customer_language(customer=CustomerFactory(attributes={"language": "en"}), channel=es_channel) == "en"
    )
    assert customer_language(customer=CustomerFactory(), channel=es_channel) == "es"
    assert customer_language(customer=CustomerFactory(attributes={"language": "fr"}), channel=plain) == "en"
    assert customer_language() == "en"


@pytest.fixture
def survey_channel(provider):
    return ChannelFactory(
        name="Web API",
        credentials={"secret": "api-secret", "callback_url": provider.url + "/callback"},
        settings={"survey": {"csat": {"enabled": True, "link": True}}},
    )


def test_a_survey_is_sent_in_the_customers_language(
    survey_channel, django_capture_on_commit_callbacks, time_machine
):
    translation.activate("en")
    agent = UserFactory(username="ana-agent", first_name="Ana")
    case = resolve_a_case(survey_channel, agent, django_capture_on_commit_callbacks, time_machine)
    customer = case.thread.customer
    customer.attributes = {"language": "es"}
    customer.save()
    request = survey_request_send(request_id=SurveyRequest.objects.get().pk)
    body = request.message.body
    assert body.startswith("¿Qué tan satisfecho estás con la ayuda recibida?")
    assert " O responde aquí: " in body
    assert translation.get_language() == "en"  # nothing leaks into the rest of the process


def test_a_survey_page_speaks_the_customers_language(
    client, survey_channel, django_capture_on_commit_callbacks, time_machine
):
    from kpis.services import survey_link_token

    agent = UserFactory(username="ana-agent", first_name="Ana")
    case = resolve_a_case(survey_channel, agent, django_capture_on_commit_callbacks, time_machine)
    request = survey_request_send(request_id=SurveyRequest.objects.get().pk)
    url = f"/survey/{survey_link_token(request=request)}/"
    assert (
        "How did we do?" in client.get(url).content.decode()
        or "how did we do?" in client.get(url).content.decode()
    )
    assert "¿qué tal lo hicimos?" in client.get(url, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    # A browser asking only for languages we lack gets the channel's language.
    survey_channel.settings = {**survey_channel.settings, "language": "es"}
    survey_channel.save()
    assert "¿qué tal lo hicimos?" in client.get(url, HTTP_ACCEPT_LANGUAGE="fr-FR,de").content.decode()
    customer = case.thread.customer
    customer.attributes = {"language": "es"}
    customer.save()
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert page["Content-Language"] == "es" and "¿qué tal lo hicimos?" in page.content.decode()


def test_the_voicemail_greeting_is_spoken_in_the_lines_language():
    channel = ChannelFactory(
        kind="voice",
        credentials={"account_sid": "AC" + "0" * 32, "auth_token": "t", "phone_number": "+34600112233"},
        settings={"language": "es-ES"},
    )
    twiml = VoiceAdapter().voicemail_twiml(channel)
    assert (
        'language="es-ES"' in twiml
        and "Gracias por llamar." in twiml
        and "Hemos recibido tu mensaje" in twiml
    )
    english = ChannelFactory(
        kind="voice",
        credentials={"account_sid": "AC" + "0" * 32, "auth_token": "t", "phone_number": "+34600112244"},
    )
    assert "Thank you for calling." in VoiceAdapter().voicemail_twiml(english)


def test_an_email_with_no_subject_of_its_own_is_titled_in_the_customers_language():
    from channels_adapters.email.adapter import EmailAdapter
    from conversations.models import Author, Direction
    from tests.channels_adapters.email_support import email_channel
    from tests.factories import CaseFactory, MessageFactory

    channel = email_channel()
    customer = CustomerFactory(attributes={"language": "es"})
    case = CaseFactory(thread=customer.thread, origin_channel=channel, subject="")
    reply = MessageFactory(case=case, direction=Direction.OUT, author=Author.AGENT, body="Hola")
    _headers, _meta, subject = EmailAdapter()._threading_headers(channel, reply, "lucia@example.com")
    assert subject.startswith("Tu solicitud ") and f"#{case.pk}" in subject
    customer.attributes = {}
    customer.save()
    reply.refresh_from_db()
    _headers, _meta, subject = EmailAdapter()._threading_headers(channel, reply, "lucia@example.com")
    assert subject.startswith("Your request ")
