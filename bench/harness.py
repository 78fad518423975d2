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


class Step:
    """`with Step("cases"):` prints the label, then the seconds it took (kept in `.seconds`)."""

    def __init__(self, label: str):
        self.label = label

    def __enter__(self):
        self.started = time.perf_counter()
        print(f"{self.label} ...", end=" ", flush=True)
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        print(f"{self.seconds:.1f} s", flush=True)


def model_defaults(model, explicit: set[str]) -> tuple[list[str], list]:
    """Columns other apps may add to a table: fill the NOT NULL ones with the model's default,
    so a bench's bulk fill keeps working when a migration adds a column."""
    from django.db import connection

    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.column in explicit or field.null:
            continue
        default = field.get_default()
        columns.append(field.column)
        values.append(field.get_db_prep_save(default, connection))
    return columns, values


def copy_text(value) -> str:
    """One value in PostgreSQL's COPY text format."""
    import json
    from datetime import datetime

    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    elif isinstance(value, datetime):
        value = value.isoformat()
    elif not isinstance(value, str):
        value = str(value)
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_lines(model, columns: list[str], lines, *, freeze: bool = True) -> int:
    """COPY rows into `model`'s table through psycopg's `cursor.copy`: `lines` yields rows
    already in COPY text format (tab-separated `columns`, no newline); the table's other
    NOT NULL columns get their model default. With `freeze` the table is emptied first in
    the same transaction, so the rows land frozen and all-visible (no VACUUM needed for
    index-only scans). Returns the rows written."""
    from django.db import connection, transaction

    extra_columns, extra_values = model_defaults(model, set(columns))
    tail = "".join("\t" + copy_text(v) for v in extra_values) + "\n"
    table = model._meta.db_table
    names = ", ".join([*columns, *extra_columns])
    count, buffer, size = 0, [], 0
    with transaction.atomic(), connection.cursor() as cursor:
        if freeze:
            cursor.execute(f"TRUNCATE {table} CASCADE")
        options = " WITH (FREEZE)" if freeze else ""
        with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN{options}") as copy:
            for line in lines:
                buffer.append(line)
                buffer.append(tail)
                count += 1
                size += 1
                if size >= 20_000:
                    copy.write("".join(buffer))
                    buffer, size = [], 0
            if buffer:
                copy.write("".join(buffer))
    return count


def secondary_schema_drop(tables: list[str]) -> list[str]:
    """Drop the secondary indexes and the unique and foreign-key constraints of `tables`
    (primary keys stay) before a bulk load: building them once afterwards is several
    times faster than maintaining them row by row. Returns the statements that put them
    back, for `secondary_schema_restore`."""
    from django.db import connection

    restore = []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype
            FROM pg_constraint c
            WHERE c.conrelid = ANY(%s::regclass[]) AND c.contype IN ('u', 'f', 'x')
            ORDER BY c.contype DESC  -- unique before foreign keys, which may need them
            """,
            [tables],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            """,
            [tables],
        )
        indexes = cursor.fetchall()
        for table, name, _definition, _kind in sorted(constraints, key=lambda c: c[3] != "f"):
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {name}")
    restore += [definition for _name, definition in indexes]
    restore += [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d, _k in constraints]
    return restore


def secondary_schema_restore(statements: list[str]) -> None:
    """Build back what `secondary_schema_drop` removed (indexes first, then unique keys
    and foreign keys), with enough maintenance memory for a sort of millions of rows."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for sql in statements:
            started = time.perf_counter()
            cursor.execute(sql)
            print(f"    {time.perf_counter() - started:6.1f} s  {sql[:110]}", flush=True)


def sequences_reset(tables: list[str]) -> None:
    """After a load with explicit ids: each table's id sequence continues after its largest id."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) "
                f"FROM {table}"
            )


def database_size(name: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(%s)", [name])
        return cursor.fetchone()[0]


def py_spy_start(pid: int, seconds: float, path: str) -> subprocess.Popen:
    """py-spy on the worker and its pool processes: samples holding the GIL (Python on CPU)."""
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil", "--rate", "50"]
        + ["--duration", str(int(seconds)), "--format", "raw", "--output", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def py_spy_summary(path: str, top: int = 30) -> list[str]:
    """Share of the worker's on-CPU samples under each function (inclusive), biggest first."""
    inclusive: dict[str, int] = {}
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            seen = set()
            for frame in stack.split(";"):
                name = frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    inclusive[name] = inclusive.get(name, 0) + n
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])
    return [f"{100 * n / total:5.1f}%  {name})" for name, n in ranked[:top]] if total else []


def automation_rules_create(n: int) -> None:
    """bench/automation.py's mix of n active rules, for a bench that measures with automation on."""
    # By path: the name `automation` is the Django app's.
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_automation", Path(__file__).with_name("automation.py")
    )
    bench_automation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_automation)
    bench_automation.rules_create(n)


def bot_articles_create() -> None:
    """Twenty published articles, one of which answers the benches' "Where is my order?"."""
    from knowledge.services import article_create

    for n in range(20):
        article_create(
            title="Where is my order? Order tracking" if n == 0 else f"Topic {n}: returns and warranty",
            body="Track your order from the link in the confirmation email. " * 3,
            language="en",
            status="published",
            slug=f"article-{n}",
        )


def api_message_body(*, external_id: str, marker: str, customer: int) -> bytes:
    """An API-channel webhook body (channels_adapters/api) from one of the benches' customers."""
    import json

    return json.dumps(
        {
            "external_id": external_id,
            "from": {"phone": f"+1415{customer + 5550000:07d}", "name": "Bench"},
            "text": f"Where is my order? {marker}",
            "timestamp": int(time.time()),
        }
    ).encode()
