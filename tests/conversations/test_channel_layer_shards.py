"""The channel layer over several Redis instances (HELPDESK_CHANNEL_LAYER_URLS).

Two databases of the test Redis stand in for two Redis instances: channels_redis
talks to each as to a server of its own, so what lands where is what several
hosts would see.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from asgiref.sync import sync_to_async

from channels_adapters.base import Sender
from conversations.services import receive_inbound
from helpdesk.readiness import readiness_report
from tests.factories import ChannelFactory, UserFactory
from tests.ws import agent_socket

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "helpdesk-shards-test"


def _other_db_url(url: str) -> str:
    base, _, db = url.rpartition("/")
    return f"{base}/{(int(db or 0) + 8) % 16}"


@pytest.fixture
def shards(settings):
    urls = [settings.REDIS_URL, _other_db_url(settings.REDIS_URL)]
    layer = dict(settings.CHANNEL_LAYERS["default"])
    layer["CONFIG"] = {**layer["CONFIG"], "hosts": [{"address": url} for url in urls], "prefix": PREFIX}
    # Changing the setting resets channels' layer cache: the app's sockets and pushes use this one.
    settings.CHANNEL_LAYERS = {"default": layer}
    settings.HELPDESK_CHANNEL_LAYER_URLS = urls
    clients = [redis.Redis.from_url(url) for url in urls]
    yield clients
    for client in clients:
        for key in client.scan_iter(f"{PREFIX}*"):
            client.delete(key)
        client.close()


async def test_groups_spread_over_the_instances_and_every_send_arrives(shards):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    groups = [f"agent.{n}" for n in range(24)]
    for group in groups:
        await layer.group_add(group, channel)
    holding = [sum(1 for _ in client.scan_iter(f"{PREFIX}:group:*")) for client in shards]
    assert sum(holding) == len(groups) and all(holding), holding  # each instance holds some groups
    for group in groups:
        await layer.group_send(group, {"type": "inbox.event", "group": group})
    received = {(await layer.receive(channel))["group"] for _ in groups}
    assert received == set(groups)


@pytest.mark.django_db(transaction=True)
async def test_an_agent_hears_a_new_message_through_a_sharded_layer(shards):
    agent = await sync_to_async(UserFactory)()
    channel = await sync_to_async(ChannelFactory)()
    communicator, connected, _ = await agent_socket(agent)
    assert connected
    await sync_to_async(receive_inbound)(
        channel=channel, sender=Sender("email", "ana@example.com", "Ana"), external_id="shard-1", text="Hola?"
    )
    events = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
    assert {e["event"] for e in events} == {"message.created", "case.updated"}
    await communicator.disconnect()


@pytest.mark.django_db
def test_readiness_fails_when_a_shard_does_not_answer(settings):
    settings.HELPDESK_CHANNEL_LAYER_URLS = [settings.REDIS_URL, "redis://127.0.0.1:1/0"]
    ready, checks = readiness_report()
    assert not ready and checks["redis"].startswith("failed: ")
    settings.HELPDESK_CHANNEL_LAYER_URLS = [settings.REDIS_URL]
    assert readiness_report() == (True, {"database": "ok", "redis": "ok", "credentials": "ok"})


def test_the_setting_lists_the_layers_hosts_and_defaults_to_redis_url():
    show = (
        "from django.conf import settings; "
        "print([h['address'] for h in settings.CHANNEL_LAYERS['default']['CONFIG']['hosts']])"
    )
    env = {"PATH": os.environ["PATH"], "DJANGO_SECRET_KEY": "x", "REDIS_URL": "redis://r:6379/0"}

    def hosts(**extra):
        code = (
            f"import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'helpdesk.settings'); {show}"
        )
        run = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert hosts() == "['redis://r:6379/0']"
    assert hosts(HELPDESK_CHANNEL_LAYER_URLS="redis://a:6379/0,redis://b:6379/0") == (
        "['redis://a:6379/0', 'redis://b:6379/0']"
    )
