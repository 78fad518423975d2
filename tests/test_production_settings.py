"""Production mode (DJANGO_DEBUG=false) refuses unsafe settings and is clean under check --deploy.

Settings are read once per process, so each variant runs `manage.py check --deploy`
in a subprocess with its own environment.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
SECRET = "f2c9Jq0r-Vx8sYk3LmN7pT1wZbH6dG4eA5uRiOoQcE9yK2nX0vMaBsDfGhJkLzW"

# The documented production settings (docs/deploy.md, .env.example).
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": SECRET,
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "DJANGO_ALLOWED_HOSTS": "helpdesk.example.com",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "true",
}


def check_deploy(**overrides):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **PRODUCTION}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_documented_production_settings_pass_check_deploy_with_no_issues():
    result = check_deploy()

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY is not set."),
        ({"DJANGO_SECRET_KEY": "change-me-in-production"}, "DJANGO_SECRET_KEY is a placeholder"),
        ({"FIELD_ENCRYPTION_KEYS": None}, "FIELD_ENCRYPTION_KEYS is not set"),
        ({"FIELD_ENCRYPTION_KEYS": "not-a-fernet-key"}, "FIELD_ENCRYPTION_KEYS key #1 is not a Fernet key."),
        ({"DJANGO_ALLOWED_HOSTS": "*"}, "DJANGO_ALLOWED_HOSTS contains '*'"),
        ({"DJANGO_ALLOWED_HOSTS": "helpdesk.example.com,*"}, "DJANGO_ALLOWED_HOSTS contains '*'"),
        ({"DJANGO_ALLOWED_HOSTS": None}, "DJANGO_ALLOWED_HOSTS is not set."),
        ({"HELPDESK_SANDBOX": "true"}, "HELPDESK_SANDBOX is on"),
    ],
    ids=[
        "no-secret",
        "compose-placeholder-secret",
        "no-encryption-keys",
        "bad-encryption-key",
        "any-host",
        "any-host-among-others",
        "no-hosts",
        "demo-sandbox-on",
    ],
)
def test_production_mode_refuses_to_start(overrides, message):
    result = check_deploy(**overrides)

    assert result.returncode != 0
    assert "Production mode (DJANGO_DEBUG=false) refuses to start" in result.stderr
    assert message in result.stderr


def test_every_problem_is_listed_at_once():
    result = check_deploy(DJANGO_SECRET_KEY=None, FIELD_ENCRYPTION_KEYS=None, DJANGO_ALLOWED_HOSTS="*")

    assert result.returncode != 0
    for message in ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DJANGO_ALLOWED_HOSTS"):
        assert f"  - {message}" in result.stderr


def test_the_embedded_default_still_starts_with_no_environment():
    # `make run`: no environment at all, DEBUG on, SQLite, a generated dev secret.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
