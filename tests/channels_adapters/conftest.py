"""Each provider's real client pointed at the local `provider` server."""

import pytest


@pytest.fixture
def graph(provider, settings):
    settings.GRAPH_API_BASE_URL = provider.url
    settings.GRAPH_API_VERSION = "v23.0"
    return provider


@pytest.fixture
def x_api(provider, settings):
    settings.X_API_BASE_URL = provider.url
    return provider


@pytest.fixture
def twilio(provider, settings):
    settings.TWILIO_API_BASE_URL = provider.url
    return provider


@pytest.fixture
def bot_api(provider, settings):
    settings.TELEGRAM_API_BASE_URL = provider.url
    return provider
