import threading

import pytest
import redis
from django.conf import settings

from tests.provider_server import ProviderServer


def pytest_configure(config):
    if not settings.USING_POSTGRES or not settings.REDIS_URL:
        raise pytest.UsageError(
            "The suite runs on PostgreSQL and Redis: set DATABASE_URL and REDIS_URL "
            "(or run `make test`, which does)."
        )
    # Factories hash a password per user; PBKDF2's deliberate slowness is not under test
    # (tests/test_permissions.py alone makes hundreds of users).
    settings.PASSWORD_HASHERS = ["tests.hashers.OneRoundPBKDF2PasswordHasher"]
    # A second alias for the read-replica router (helpdesk/db_router.py), the primary's
    # mirror as DATABASE_REPLICA_URL makes it; unused unless a test turns
    # HELPDESK_READ_REPLICA on and asks for the "replica" database.
    # Tests drive drains themselves: a drainer out of work leaves at once instead
    # of waiting on the doorbell (test_inbound_queue.py tests that wait on its own).
    settings.HELPDESK["INBOUND_DRAIN_IDLE_SECONDS"] = 0.0
    if "replica" not in settings.DATABASES:
        settings.DATABASES["replica"] = {**settings.DATABASES["default"], "TEST": {"MIRROR": "default"}}


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    # The suite owns its Redis database: leftovers of an earlier run (queued
    # tasks, channel groups) must not leak into this one.
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield


@pytest.fixture(autouse=True)
def _clear_process_caches():
    # A test's rollback sends no post_delete: per-process caches of channels
    # and SLA policies must not carry one test's rows into the next.
    from helpdesk.process_cache import process_caches_clear

    process_caches_clear()
    yield


@pytest.fixture(autouse=True)
def _outbound_wake_clear():
    # A reply sets the senders' wake-up key (conversations/batches.py) for 2 s: a
    # test whose tasks never ran (delay patched out) must not leave the next
    # test's reply counting on a task that will not come.
    from conversations.batches import WAKE_KEY

    redis.Redis.from_url(settings.REDIS_URL).delete(WAKE_KEY)
    yield


@pytest.fixture(autouse=True)
def _default_language():
    # LocaleMiddleware activates a request's language for the rest of the thread:
    # a test that asked for Spanish must not leave the next test speaking it.
    from django.utils import translation

    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def provider():
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
def live_worker(transactional_db, settings):
    """A real Celery worker on the Redis broker, in a thread of this process."""
    from celery.contrib.testing.worker import start_worker

    from helpdesk.celery_app import app

    settings.HELPDESK = {
        **settings.HELPDESK,
        "OUTBOUND_BACKOFF_SECONDS": 0.2,
        "OUTBOUND_BACKOFF_MAX_SECONDS": 1.0,
    }
    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=10
    ) as worker:
        yield worker


def wait_for(predicate, timeout=15.0, interval=0.05):
    """Poll until the worker has done its part; fail with a clear message if not."""
    done = threading.Event()
    waited = 0.0
    while waited < timeout:
        value = predicate()
        if value:
            return value
        done.wait(interval)
        waited += interval
    raise AssertionError(f"Condition not met within {timeout}s")


@pytest.fixture
def org(db):
    """Two teams with an agent each (Billing: ana, Sales: bo) and a supervisor (boss):
    the cast of the visibility tests."""
    from tests.factories import TeamFactory, UserFactory

    billing, sales = TeamFactory(name="Billing"), TeamFactory(name="Sales")
    ana, bo = UserFactory(username="ana"), UserFactory(username="bo")
    billing.members.add(ana)
    sales.members.add(bo)
    boss = UserFactory(username="boss", role="supervisors")
    return {"billing": billing, "sales": sales, "ana": ana, "bo": bo, "boss": boss}


@pytest.fixture
def agent(db):
    from tests.factories import UserFactory

    return UserFactory()
