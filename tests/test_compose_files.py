"""docker-compose.yml and its scale profile hold together (no Docker engine runs here).

What Compose would refuse or silently get wrong at `up`: a dependency on a
service that does not exist, a bind mount of a file the repository does not
have, a setting the app does not read (a typo'd variable is ignored and the
default wins), the load balancer pointing at another port than the web
replicas listen on.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_PREFIXES = ("DJANGO_", "HELPDESK_", "DATABASE_", "REDIS_", "CELERY_", "FIELD_")


class _ComposeLoader(yaml.SafeLoader):
    """Compose's `!reset` (drop the base file's value) read as a marker."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: "!reset")


def _load(name: str) -> dict:
    return yaml.load((ROOT / name).read_text(), Loader=_ComposeLoader)  # noqa: S506 - a SafeLoader subclass


@pytest.fixture(scope="module")
def files():
    return {name: _load(name) for name in ("docker-compose.yml", "docker-compose.scale.yml")}


def _services(files):
    return {name for spec in files.values() for name in spec["services"]}


def test_every_dependency_names_a_service(files):
    known = _services(files)
    for name, spec in files.items():
        for service, body in spec["services"].items():
            for dependency in body.get("depends_on", {}):
                assert dependency in known, f"{name}: {service} depends on unknown {dependency}"
            extends = body.get("extends")
            if extends:
                assert (ROOT / extends["file"]).exists() and extends["service"] in _load(extends["file"])[
                    "services"
                ]


def test_every_bind_mount_is_a_file_of_the_repository(files):
    for name, spec in files.items():
        for service, body in spec["services"].items():
            for volume in body.get("volumes", []):
                source = volume.split(":", 1)[0]
                if source.startswith("./"):
                    assert (ROOT / source).exists(), f"{name}: {service} mounts missing {source}"


def test_every_app_setting_compose_passes_is_read_by_the_settings(files):
    settings_text = (ROOT / "helpdesk" / "settings.py").read_text()
    passed = set()
    for spec in files.values():
        bodies = list(spec["services"].values()) + [v for k, v in spec.items() if k.startswith("x-")]
        for body in bodies:
            environment = body.get("environment", {}) if isinstance(body, dict) else {}
            passed |= {key for key in environment if key.startswith(APP_PREFIXES)}
    assert "HELPDESK_CHANNEL_LAYER_URLS" in passed and "DATABASE_REPLICA_URL" in passed
    unread = sorted(key for key in passed if f'"{key}"' not in settings_text)
    assert not unread, f"compose passes settings helpdesk/settings.py never reads: {unread}"


def test_the_balancer_sends_to_the_port_the_web_replicas_listen_on(files):
    scale = files["docker-compose.scale.yml"]["services"]
    conf = (ROOT / "deploy" / "nginx" / "scale.conf").read_text()
    assert any("deploy/nginx/scale.conf" in volume for volume in scale["lb"]["volumes"])
    upstream = re.search(r"server (\w+):(\d+)", conf)
    assert upstream and upstream.group(1) in _services(files)
    assert f"--port {upstream.group(2)}" in scale["web"]["command"]
