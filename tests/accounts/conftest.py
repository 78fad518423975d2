from tests.channels_adapters.conftest import bot_api, graph, twilio, x_api  # noqa: F401 - the providers' fixtures
