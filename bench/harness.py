"""Shared pieces of the benchmarks: their own database, the server processes, the figures.

Not a benchmark itself: the scripts next to it import it (`from harness import ...`
works because a script run as `python bench/x.py` has bench/ first on sys.path).
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def database_url(*, base_url: str, name: str) -> str:
    """The URL of database `name` on the server of `base_url`: only the server is taken from it."""
    return urlunsplit(urlsplit(base_url)._replace(path=f"/{name}"))


def _admin_connect(base_url: str):
    """Autocommit connection to the `postgres` database: CREATE/DROP DATABASE refuse a transaction."""
    import psycopg

    return psycopg.connect(database_url(base_url=base_url, name="postgres"), autocommit=True)


def database_recreate(*, base_url: str, name: str) -> str:
    """Drop (disconnecting anyone left) and create `name`, so every run starts empty; returns its URL."""
    with _admin_connect(base_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return database_url(base_url=base_url, name=name)


def database_ensure(*, base_url: str, name: str, recreate: bool) -> str:
    """Create `name` only if missing (or drop it first if `recreate`): for data kept between runs."""
    with _admin_connect(base_url) as conn:
        if recreate:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {name}")
    return database_url(base_url=base_url, name=name)


# Production mode (DEBUG off) refuses to start without real secrets and named
# hosts, and redirects plain HTTP to HTTPS: benches talk HTTP to 127.0.0.1 with
# throwaway secrets (helpdesk/settings.py, docs/deploy.md).
BENCH_PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "FIELD_ENCRYPTION_KEYS": "YmVuY2gtb25seS1maWVsZC1lbmNyeXB0aW9uLWtleSE=",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
}


def django_bench_setup(*, db_name: str, redis_default: str, **extra_env: str) -> dict:
    """A fresh `db_name` next to DATABASE_URL, migrated; Django set up in this
    process; the Redis db emptied. Returns the environment for the servers it
    starts (production-like: DEBUG off, quiet logs), extra_env on top."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    env = {
        **os.environ,
        "DATABASE_URL": database_recreate(base_url=base, name=db_name),
        "REDIS_URL": os.environ.get("REDIS_URL", redis_default),
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only"),
        **BENCH_PRODUCTION_ENV,
        "LOG_LEVEL": "ERROR",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        **extra_env,
    }
    os.environ.update(env)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    import django
    import redis

    django.setup()
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    return env


def free_port() -> int:
    """A port nothing listens on, so a benchmark never collides with a dev server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100): a value that was actually measured, no interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def web_start(*, env: dict, port: int, workers: int, extra_args: tuple[str, ...] = ()) -> subprocess.Popen:
    """uvicorn on the ASGI app with several workers, as in production, quiet so the figures stay readable.

    `extra_args` go to uvicorn as they are (e.g. `--backlog 4096`)."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "helpdesk.asgi:application",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--no-access-log", "--log-level", "warning",
            *extra_args,
        ],
        cwd=ROOT, env=env,
    )  # fmt: skip


def worker_start(
    *,
    env: dict,
    concurrency: int,
    nice: int = 0,
    new_session: bool = False,
    extra_args: tuple[str, ...] = (),
) -> subprocess.Popen:
    """A Celery worker without gossip/mingle/heartbeat: nothing but task processing to measure.

    `nice` lowers its CPU priority, as a deployment sharing cores between the
    web tier and the workers should: webhooks answered first, processing on
    the CPU left over (it is asynchronous by design). `new_session` puts it in
    its own process group, so a fault bench can kill -9 it with its pool.
    `extra_args` go to `celery worker` as they are (e.g. `--queues`)."""
    return subprocess.Popen(
        [
            *(["nice", "-n", str(nice)] if nice else []),
            sys.executable, "-m", "celery", "-A", "helpdesk", "worker",
            "--concurrency", str(concurrency), "--loglevel", "warning",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            *extra_args,
        ],
        cwd=ROOT, env=env, start_new_session=new_session,
    )  # fmt: skip


def wait_healthy(*, port: int, timeout: float) -> bool:
    """Poll /healthz until the web server answers, so no request is timed against a booting server."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return True
        except OSError:
            time.sleep(0.2)
    return False


def processes_stop(procs) -> None:
    """SIGTERM all first (they shut down in parallel), then wait; kill what is still up after 20 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
