import pytest


@pytest.fixture
def kb(db):
    """The demo help center: 24 published articles in Spanish and English."""
    from knowledge.demo import demo_articles_seed

    return {a.slug: a for a in demo_articles_seed()}


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run the after-commit hooks (the bot listens there) as a real commit would, nested ones too."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


# Each provider's real client pointed at the local server: the adapters' own fixtures.
from tests.browser.conftest import asgi_server, browser_contexts, chromium  # noqa: E402, F401
from tests.channels_adapters.conftest import bot_api, graph  # noqa: E402, F401
