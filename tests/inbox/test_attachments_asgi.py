"""Attachments through the production server's entry point (ASGI), not only the test client."""

import asyncio
import warnings

import pytest
from django.conf import settings
from django.test import Client

from conversations.attachments import attachment_save
from tests.factories import CaseFactory, MessageFactory, UserFactory
from tests.test_asgi import call, http_scope

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 300_000


@pytest.fixture
def application(transactional_db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    from helpdesk.asgi import application

    return application


def test_an_agent_downloads_a_stored_attachment_through_the_asgi_app(application):
    agent = UserFactory()
    record = attachment_save(content=PNG, name="photo.png", content_type="image/png")
    message = MessageFactory(case=CaseFactory(), attachments=[record])
    client = Client()
    client.force_login(agent)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    scope = http_scope(f"/inbox/attachment/{message.pk}/0/", headers=[(b"cookie", cookie.encode())])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a sync iterator served asynchronously
        answer = asyncio.run(call(application, scope))

    headers = {k.lower(): v for k, v in answer["headers"].items()}
    assert answer["status"] == 200
    assert answer["body"] == PNG
    assert headers[b"content-type"] == b"image/png"
    assert headers[b"content-length"] == str(len(PNG)).encode()
    assert headers[b"x-content-type-options"] == b"nosniff"
