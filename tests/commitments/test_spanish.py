"""The commitments UI speaks Spanish (commitments/locale/es) when the request does."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from commitments import services
from tests.factories import CaseFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def spanish(settings):
    # Whatever way the project picks the language (per user, Accept-Language), Django's
    # LocaleMiddleware activates it; here Accept-Language asks for Spanish.
    middleware = list(settings.MIDDLEWARE)
    if "django.middleware.locale.LocaleMiddleware" not in middleware:
        at = middleware.index("django.contrib.sessions.middleware.SessionMiddleware") + 1
        middleware.insert(at, "django.middleware.locale.LocaleMiddleware")
    settings.MIDDLEWARE = middleware
    yield {"HTTP_ACCEPT_LANGUAGE": "es"}
    # The middleware leaves Spanish active on this thread: the tests after this one speak English.
    translation.activate(settings.LANGUAGE_CODE)


def test_pinned_box_dialog_and_supervisors_page_in_spanish(client, agent, spanish):
    case = CaseFactory()
    message = MessageFactory(case=case)
    services.commitment_create(
        message=message,
        text="Reembolso el viernes",
        due_on=timezone.localdate() + timedelta(days=2),
        by=agent,
    )
    client.force_login(agent)
    html = client.get(f"/inbox/case/{case.pk}/", **spanish).content.decode()
    for text in (
        "1 compromiso abierto con este cliente",
        "Marcar como compromiso",
        "Guardar compromiso",
        "Retirar",
    ):
        assert text in html, text
    assert "open commitment" not in html and "Save commitment" not in html
    pop = client.get(f"/commitments/customer/{case.thread.customer_id}/pinned/?place=pop", **spanish)
    assert "1 compromiso abierto con quien llama" in pop.content.decode()
    client.force_login(UserFactory(role="supervisors"))
    board = client.get("/commitments/", **spanish).content.decode()
    assert "Compromisos con los clientes" in board and "Solo vencidos" in board


def test_errors_in_spanish(agent):
    with translation.override("es"), pytest.raises(ValidationError, match="Indica qué se prometió"):
        services.commitment_create(message=MessageFactory(), text=" ", by=agent)
