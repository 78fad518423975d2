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


@pytest.fixture
def take_bot_turns(run_on_commit):
    """Take the queued bot turns as the worker does: the Celery task itself, called after the
    customer's message committed, its own after-commit hooks run (sends queued, pushes).

    The suite's Celery is not eager (a Redis broker): the receiver really queued
    the task there; tests/knowledge/test_bot_worker.py has a real worker take it.
    """
    from knowledge.models import BotTurn
    from knowledge.tasks import bot_message_turn

    def take():
        pending = BotTurn.objects.filter(done_at__isnull=True).order_by("message_id")
        return [
            outcome
            for message_id in list(pending.values_list("message_id", flat=True))
            for outcome in run_on_commit(bot_message_turn, message_id)
        ]

    return take


# Each provider's real client pointed at the local server: the adapters' own fixtures.
from tests.browser.conftest import asgi_server, browser_contexts, chromium  # noqa: E402, F401
from tests.channels_adapters.conftest import bot_api, graph  # noqa: E402, F401
