"""The case page's outreach form and the public unsubscribe page."""

from outreach.consent import unsubscribe_url
from outreach.models import Consent, Outreach, OutreachStep
from tests.factories import CaseFactory, TeamFactory, UserFactory


def _case(world, team=None):
    return CaseFactory(thread=world["customer"].thread, origin_channel=world["sms"], team=team)


def test_an_agent_starts_a_follow_up_from_the_case_page(world, client):
    case = _case(world)
    agent = UserFactory()
    client.force_login(agent)
    page = client.get(f"/outreach/cases/{case.pk}/box/")
    assert page.status_code == 200
    assert f'action="/outreach/cases/{case.pk}/start/"' in page.content.decode()
    response = client.post(
        f"/outreach/cases/{case.pk}/start/",
        {
            "body": "Did you get our message about the refund?",
            "goal": "read",
            "channel_1": world["whatsapp"].pk,
            "advance_on_1": "unread",
            "wait_minutes_1": 240,
            "channel_2": world["sms"].pk,
            "advance_on_2": "undelivered",
            "wait_minutes_2": 30,
            "channel_3": "",
            "advance_on_3": "failed",
            "wait_minutes_3": 0,
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/inbox/case/{case.pk}/"
    outreach = Outreach.objects.get()
    assert (outreach.case_id, outreach.source, outreach.created_by_id, outreach.goal) == (
        case.pk,
        "agent",
        agent.pk,
        "read",
    )
    steps = list(
        OutreachStep.objects.filter(outreach=outreach).values_list("channel_id", "advance_on", "wait_minutes")
    )
    assert steps == [(world["whatsapp"].pk, "unread", 240), (world["sms"].pk, "undelivered", 30)]
    page = client.get(f"/inbox/case/{case.pk}/").content.decode()
    box = client.get(f"/outreach/cases/{case.pk}/box/").content.decode()
    assert "Outreach #" in page and f'data-outreach-id="{outreach.pk}"' in box


def test_the_form_names_the_channels_as_they_are_now(world, client):
    # The form's HTML is kept between pages (it does not depend on the case): a renamed
    # or switched-off channel must show as it is now, in the language of the page.
    case = _case(world)
    client.force_login(UserFactory())
    page = client.get(f"/outreach/cases/{case.pk}/box/").content.decode()
    assert f'<option value="{world["sms"].pk}">{world["sms"]}</option>' in page
    world["sms"].name = "Text messages (new number)"
    world["sms"].save(update_fields=["name"])
    world["whatsapp"].is_active = False
    world["whatsapp"].save(update_fields=["is_active"])
    page = client.get(f"/outreach/cases/{case.pk}/box/").content.decode()
    assert str(world["sms"]).startswith("Text messages (new number)")
    assert f'<option value="{world["sms"].pk}">{world["sms"]}</option>' in page
    assert f'<option value="{world["whatsapp"].pk}">' not in page
    page = client.get(f"/outreach/cases/{case.pk}/box/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Canales, en orden" in page


def test_the_case_page_loads_the_box_after_it_with_the_same_visibility(
    world, client, django_assert_max_num_queries
):
    case = _case(world)
    hidden = CaseFactory(team=TeamFactory(name="Sales"))  # another customer's
    client.force_login(UserFactory())
    page = client.get(f"/inbox/case/{case.pk}/").content.decode()
    # The page holds a placeholder; the form is not rendered into it.
    assert f'data-fragment="/outreach/cases/{case.pk}/box/"' in page
    assert f'action="/outreach/cases/{case.pk}/start/"' not in page
    # The session, the agent and their teams, the case, its outreaches and consents, the channels.
    with django_assert_max_num_queries(9):
        box = client.get(f"/outreach/cases/{case.pk}/box/")
    assert box.status_code == 200 and b'class="outreach-form"' in box.content
    # An agent outside the case's team gets no box, as they get no page.
    assert client.get(f"/inbox/case/{hidden.pk}/").status_code == 404
    assert client.get(f"/outreach/cases/{hidden.pk}/box/").status_code == 404
    assert client.post(f"/outreach/cases/{case.pk}/box/").status_code == 405


def test_an_agent_outside_the_team_cannot_start_one(world, client):
    case = _case(world, team=TeamFactory(name="Sales"))
    client.force_login(UserFactory())
    response = client.post(
        f"/outreach/cases/{case.pk}/start/", {"body": "x", "goal": "read", "channel_1": world["sms"].pk}
    )
    assert response.status_code == 404
    assert not Outreach.objects.exists()


def test_unsubscribe_link_asks_then_records_without_javascript(world, client):
    url = unsubscribe_url(customer_id=world["customer"].pk)
    path = url.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)
    assert page.status_code == 200 and b'<form method="post"' in page.content
    assert not Consent.objects.exists()
    done = client.post("/" + path)
    assert done.status_code == 200 and b"unsubscribed" in done.content
    consent = Consent.objects.get(customer=world["customer"])
    assert (consent.channel_kind, consent.status, consent.source) == ("email", "opted_out", "link")


def test_one_click_unsubscribe_from_the_mail_client(world, client):
    path = "/" + unsubscribe_url(customer_id=world["customer"].pk).split("://", 1)[1].split("/", 1)[1]
    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Consent.objects.filter(
        customer=world["customer"], status="opted_out", channel_kind="email"
    ).exists()


def test_a_forged_unsubscribe_token_is_a_404(world, client):
    assert client.get("/outreach/unsubscribe/eyJjIjoxLCJrIjoiZW1haWwifQ:forged:sig/").status_code == 404
    assert not Consent.objects.exists()


def test_the_case_panel_and_unsubscribe_page_speak_spanish(world, client):
    case = _case(world)
    client.force_login(UserFactory())
    path = "/" + unsubscribe_url(customer_id=world["customer"].pk).split("://", 1)[1].split("/", 1)[1]
    # An agent without a language of their own, and the customer's public page: the browser's.
    page = client.get(f"/inbox/case/{case.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    box = client.get(f"/outreach/cases/{case.pk}/box/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    unsubscribe = client.get(path, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Seguimiento por otro canal" in page and "Cargando…" in page  # the placeholder
    assert "Seguimiento por otro canal" in box and "Iniciar" in box
    assert "¿Darte de baja de estos correos?" in unsubscribe
