"""Reads that may lag go to the replica alias; nothing else does (helpdesk/db_router.py).

The suite's "replica" alias is the test database's mirror (tests/conftest.py), so
these tests commit their rows (transactional) and read them back through it, as
a replica a moment behind would show them.
"""

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from helpdesk.db_router import REPLICA, ReplicaRouter, lagging_reads, reads_may_lag
from kpis.models import KpiDaily
from tests.factories import ChannelFactory, UserFactory
from tests.kpis.factories import build_case

BOTH = ["default", "replica"]
PERIOD = {"from": "2026-03-02", "to": "2026-03-05"}


@pytest.fixture
def replica_on(settings):
    settings.HELPDESK_READ_REPLICA = True


@pytest.fixture
def supervisor_client(client):
    client.force_login(UserFactory(username="sup", role="supervisors"))
    return client


def _capture(path, client, query=PERIOD):
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as replica,
    ):
        response = client.get(path, query)
    assert response.status_code == 200, response.content[:300]
    return [q["sql"] for q in primary.captured_queries], [q["sql"] for q in replica.captured_queries]


@pytest.mark.django_db(transaction=True, databases=BOTH)
@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/",
        "/dashboard/channels/",
        "/api/v1/kpis/",
        "/api/v1/kpis/channels/",
        "/dashboard/channels/scorecard.csv",
    ],
)
def test_the_supervisors_aggregates_read_from_the_replica(replica_on, supervisor_client, path):
    channel = ChannelFactory(kind="email", name="Email")
    build_case(channel=channel, opened="2026-03-02T09:00", replies=("2026-03-02T09:10",))

    primary, replica = _capture(path, supervisor_client)

    kpi_tables = ("conversations_case", "kpis_", "channels_adapters_channel")
    assert any(t in sql for sql in replica for t in kpi_tables), replica
    # The primary serves only the request's session and login, before the view runs.
    assert not [sql for sql in primary if any(t in sql for t in kpi_tables)], primary


@pytest.mark.django_db(transaction=True, databases=BOTH)
def test_without_the_setting_every_read_stays_on_the_primary(supervisor_client):
    primary, replica = _capture("/dashboard/", supervisor_client)
    assert replica == [] and primary


@pytest.mark.django_db(transaction=True, databases=BOTH)
def test_the_inbox_never_reads_from_the_replica(replica_on, client):
    client.force_login(UserFactory(username="agent", role="agents"))
    primary, replica = _capture("/inbox/", client, query={})
    assert replica == [] and primary


@pytest.mark.django_db(transaction=True, databases=BOTH)
def test_writes_inside_a_lagging_view_go_to_the_primary(replica_on):
    router = ReplicaRouter()
    with lagging_reads():
        assert router.db_for_read(KpiDaily) == REPLICA
        assert router.db_for_write(KpiDaily) == "default"
    assert router.db_for_read(KpiDaily) is None  # the flag ends with the view
    assert router.allow_migrate(REPLICA, "kpis") is False and router.allow_migrate("default", "kpis") is True


@pytest.mark.django_db(transaction=True, databases=BOTH)
async def test_an_async_view_is_marked_too(replica_on):
    router = ReplicaRouter()

    @reads_may_lag
    async def view():
        return router.db_for_read(KpiDaily)

    assert await view() == REPLICA
    assert router.db_for_read(KpiDaily) is None
