"""The Spanish UI in Chromium: a Spanish browser gets Spanish pages, an agent switches
language in their settings and keeps it, dates follow the language."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import UserPreferences
from api.services import api_token_create
from tests.browser.conftest import off_loop
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_spanish_browser_then_an_agents_own_choice(asgi_server, browser_contexts):
    marta = off_loop(UserFactory, username="marta", first_name="Marta")
    # A browser that asks for Spanish: the login page answers in Spanish.
    page = browser_contexts(locale="es-ES").new_page()
    page.goto(asgi_server + "/login/")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading")).to_have_text("Inicia sesión en la bandeja de entrada")
    page.get_by_label("Usuario").fill("marta")
    page.get_by_label("Contraseña").fill("pass-word-123")
    page.get_by_role("button", name="Iniciar sesión").click()
    page.wait_for_url(asgi_server + "/inbox/")
    nav = page.get_by_role("navigation", name="Principal")
    expect(nav.get_by_role("link", name="Mi configuración")).to_be_visible()
    expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible()

    # The same agent on an English browser: English, until they choose Spanish.
    off_loop(api_token_create, user=marta, name="Tienda")
    english = browser_contexts(locale="en-US").new_page()
    english.goto(asgi_server + "/login/")
    english.get_by_label("Username").fill("marta")
    english.get_by_label("Password").fill("pass-word-123")
    english.get_by_role("button", name="Log in").click()
    english.wait_for_url(asgi_server + "/inbox/")
    english.get_by_role("link", name="My settings").click()
    expect(english.locator("html")).to_have_attribute("lang", "en")
    english.get_by_label("Language").select_option("es")
    english.get_by_role("button", name="Save").click()
    expect(english.locator(".notice-success")).to_have_text("Se ha guardado tu configuración.")
    expect(english.locator("html")).to_have_attribute("lang", "es")
    expect(english.get_by_label("Idioma")).to_have_value("es")
    assert off_loop(lambda: UserPreferences.objects.get(user=marta).language) == "es"

    # Every page now, and dates written the Spanish way (day/month/year).
    english.get_by_role("navigation", name="Principal").get_by_role("link", name="Tokens de API").click()
    expect(english.get_by_role("heading", level=1)).to_have_text("Tokens de API")
    created = english.locator("table tbody tr", has_text="Tienda").locator("td").nth(2)
    expect(created).to_have_text(re.compile(r"^\d{2}/\d{2}/\d{4} \d{1,2}:\d{2}$"))
