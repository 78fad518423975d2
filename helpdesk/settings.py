"""Settings from the environment, with an embedded default that needs nothing.

With no environment set the app runs on SQLite, the in-memory channel layer and
eager Celery, so one command shows a working inbox on a fresh machine. Setting
DATABASE_URL and REDIS_URL switches to PostgreSQL and Redis (broker, channel
layer, cache), as in CI, docker-compose and production.
"""

import base64
import hashlib
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# .env beside docker-compose.yml holds compose's production secrets (.env.example):
# read into Django only when asked, so a copy of it in a checkout never turns
# `make run` or the tests into a half-production setup (hosts, proxy header).
env_file = BASE_DIR / ".env"
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False) and env_file.exists():
    environ.Env.read_env(str(env_file))


def _development_secret() -> str:
    # A stable secret per checkout: credentials encrypted with a key derived from
    # it stay readable across restarts of the demo.
    path = BASE_DIR / ".dev-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


# DEBUG on is the embedded default (`make run`, the tests); production runs with
# DJANGO_DEBUG=false, and then refuses to start on an unsafe configuration
# (see the end of this file and docs/deploy.md).
DEBUG = env.bool("DJANGO_DEBUG", default=True)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = _development_secret()
    # Once per `make run`: runserver's autoreloader imports the settings again in its child.
    if os.environ.get("RUN_MAIN") != "true":
        print(
            "!!! WARNING: DJANGO_SECRET_KEY is not set: using a generated DEVELOPMENT secret "
            "from .dev-secret. Never run production like this. !!!",
            file=sys.stderr,
        )

# "*" lets the demo answer on any address; production must name its hosts.
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# The public base URL providers call us on (behind a proxy it differs from what
# Django sees). Used for webhook URLs shown in admin and for signature checks
# that cover the URL (Twilio).
PUBLIC_BASE_URL = env("HELPDESK_PUBLIC_BASE_URL", default="http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "axes",
    "channels",
    "helpdesk",  # project-wide management commands (readiness)
    "customers",
    "conversations",
    "channels_adapters",
    "kpis",
    "integrations",  # outbound webhooks: listens to the core, never imported by it
    "automation",  # routing, assignment, rules, macros: listens to the core, never imported by it
    "api",  # REST API v1 (depends on the core; the core never imports it)
    "audit",  # append-only audit log (docs/privacy.md)
    "privacy",  # customer import, GDPR export and erasure, retention, customers directory
    "commitments",  # promises to customers, pinned on every channel: listens to the core
    "accounts",  # a person's own settings (UI language)
    "knowledge",  # knowledge base, help center and the 24/7 bot (docs/knowledge.md)
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc assets, served by us (no CDN)
]

# Every middleware here can run async: one sync-only middleware (WhiteNoise was)
# makes Django hop loop -> thread -> loop -> thread on every request under ASGI,
# which cost webhooks a fifth of their throughput. Static files are served in
# front of Django by the ASGI app (helpdesk/asgi.py).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Accept-Language (public pages), else LANGUAGE_CODE; an agent's own choice
    # overrides it once the user is known (accounts.middleware, below).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into the login page's message.
    "axes.middleware.AxesMiddleware",
    # Who is acting, for audit entries written by signals (role changes, channel saves).
    "audit.context.AuditRequestMiddleware",
]

ROOT_URLCONF = "helpdesk.urls"
# Threads per ASGI server process for requests' sync code (views, the ORM):
# this many requests run at once per process, the next ones wait for a thread.
ASGI_REQUEST_THREADS = env.int("ASGI_REQUEST_THREADS", default=4)
WSGI_APPLICATION = "helpdesk.wsgi.application"
ASGI_APPLICATION = "helpdesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",  # LANGUAGE_CODE for <html lang>
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USING_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# Connections belong to threads. Under ASGI, requests run on at most
# ASGI_REQUEST_THREADS reused threads per process (helpdesk/request_threads.py);
# a process-wide pool (psycopg_pool) caps connections further and shares them
# with the channels consumers' threads. Off by default (tests, runserver), on in compose.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
if USING_POSTGRES and DATABASE_POOL_MAX_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": 10,
    }

# A read replica (PostgreSQL streaming replication) for the reads that may lag:
# the dashboard, the KPI API, the scorecard and the exports (helpdesk/db_router.py).
# Unset: everything reads from the primary.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {
        **env.db_url_config(DATABASE_REPLICA_URL),
        "ATOMIC_REQUESTS": False,
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        # Tests run against one database: the replica is the primary's mirror there.
        "TEST": {"MIRROR": "default"},
    }
HELPDESK_READ_REPLICA = env.bool("HELPDESK_READ_REPLICA", default=bool(DATABASE_REPLICA_URL))
DATABASE_ROUTERS = ["helpdesk.db_router.ReplicaRouter"]

REDIS_URL = env("REDIS_URL", default="")
# The channel layer's Redis (the pushes to agents' and visitors' sockets): REDIS_URL
# unless set. Several URLs, comma-separated, shard the groups and sockets over
# several Redis instances (channels_redis hashes each name to one of them): the
# step for when pushes outgrow one Redis core, with the broker and the cache left
# on REDIS_URL (docs/scaling.md). Every web and worker process must list the same
# URLs in the same order.
HELPDESK_CHANNEL_LAYER_URLS = env.list(
    "HELPDESK_CHANNEL_LAYER_URLS", default=[REDIS_URL] if REDIS_URL else []
)

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis with pools that wait rather than fail past their cap (helpdesk/redis_pools.py).
            "BACKEND": "helpdesk.redis_pools.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the same
                # 5 s a socket's receive blocks in BZPOPMIN: an idle receive then
                # raised TimeoutError and closed a WebSocket about every 5 s per
                # process (redis/redis-py#4091, django/channels_redis#422; found
                # by bench/webchat.py). A longer read timeout lets the blocking
                # pop answer, and still gives up on a Redis that stopped answering.
                "hosts": [{"address": url, "socket_timeout": 15} for url in HELPDESK_CHANNEL_LAYER_URLS],
                "prefix": env("HELPDESK_CHANNEL_PREFIX", default="helpdesk"),
                # Events a socket may have waiting before channels_redis drops new ones
                # (its default, 100, is a second of a busy supervisor's inbox).
                "capacity": env.int("HELPDESK_CHANNEL_CAPACITY", default=1000),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # One pool per process: not a connection per WebSocket (helpdesk/redis_pools.py).
            "OPTIONS": {"pool_class": "helpdesk.redis_pools.SharedConnectionPool"},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: eager when there is no broker, so the demo sends replies in-process.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
# Celery's Django fixup closes every database connection before and after each
# task unless this is set: a new PostgreSQL connection (a backend forked and
# authenticated) for every task, and with DATABASE_POOL_MAX_SIZE a new pool in
# every prefork child for every task (bench/outbound.py: a third of a send's
# worker time). It now closes them every this many tasks; between tasks,
# helpdesk/celery_app.py does what Django does between requests
# (close_old_connections: CONN_MAX_AGE, errors, the health check). 0: close per task.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "redrive-outbound": {
        "task": "conversations.tasks.outbound_redrive",
        "schedule": env.float("HELPDESK_REDRIVE_EVERY_SECONDS", default=60.0),
    },
    "redrive-inbound": {
        "task": "channels_adapters.tasks.inbound_events_redrive",
        "schedule": env.float("HELPDESK_REDRIVE_EVERY_SECONDS", default=60.0),
    },
    "cases-snooze-wake": {
        "task": "conversations.tasks.cases_snooze_wake",
        "schedule": env.float("HELPDESK_SNOOZE_WAKE_EVERY_SECONDS", default=30.0),
    },
}

# KPIs, SLAs and surveys (kpis app): beat tasks and behaviour.
CELERY_BEAT_SCHEDULE.update(
    {
        "kpis-rollup-daily": {
            "task": "kpis.tasks.kpi_rollup",
            "schedule": env.float("HELPDESK_KPI_ROLLUP_EVERY_SECONDS", default=3600.0),
        },
        "kpis-sla-check": {
            "task": "kpis.tasks.sla_check",
            "schedule": env.float("HELPDESK_SLA_CHECK_EVERY_SECONDS", default=60.0),
        },
        "kpis-surveys-send-due": {
            "task": "kpis.tasks.surveys_send_due",
            "schedule": env.float("HELPDESK_SURVEY_SEND_EVERY_SECONDS", default=60.0),
        },
        "kpis-survey-campaigns": {
            "task": "kpis.tasks.survey_campaigns_run",
            "schedule": env.float("HELPDESK_SURVEY_CAMPAIGNS_EVERY_SECONDS", default=3600.0),
        },
    }
)
KPIS = {
    # A case nobody answered counts as abandoned once resolved, or after this long unresolved.
    "ABANDON_AFTER_HOURS": env.int("HELPDESK_KPI_ABANDON_AFTER_HOURS", default=24),
    # The rollup task rewrites this many past days each run: late answers and resolutions land.
    "ROLLUP_LOOKBACK_DAYS": env.int("HELPDESK_KPI_ROLLUP_LOOKBACK_DAYS", default=8),
    # Push "sla.warning" to the inbox this long before a due time.
    "SLA_WARNING_MINUTES": env.int("HELPDESK_SLA_WARNING_MINUTES", default=15),
    # A reply to a survey counts only this long after it was sent (kept within the reopen window).
    "SURVEY_ANSWER_WINDOW_HOURS": env.int("HELPDESK_SURVEY_ANSWER_WINDOW_HOURS", default=72),
    "SURVEY_LINK_MAX_AGE_DAYS": env.int("HELPDESK_SURVEY_LINK_MAX_AGE_DAYS", default=14),
    # Active SLA policies are cached this long per process (0 = off).
    "SLA_POLICY_CACHE_SECONDS": env.float("HELPDESK_SLA_POLICY_CACHE_SECONDS", default=5.0),
    # The currency of Channel.monthly_cost and settings["cost_per_message"], shown with every cost.
    "CURRENCY": env.str("HELPDESK_KPI_CURRENCY", default="EUR"),
    # The channel scorecard's verdict (docs/kpis.md "Channel scorecard"): "review it" when CSAT is
    # below REVIEW_CSAT_BELOW, a case costs more than REVIEW_COST_ABOVE, or a paid channel brings
    # less than REVIEW_SHARE_BELOW of all contacts; "grow" when CSAT reaches GROW_CSAT_FROM and a
    # case costs at most GROW_COST_UP_TO; "keep" otherwise. Under MIN_CASES cases there is no verdict.
    "SCORECARD_MIN_CASES": env.int("HELPDESK_SCORECARD_MIN_CASES", default=5),
    "SCORECARD_REVIEW_CSAT_BELOW": env.float("HELPDESK_SCORECARD_REVIEW_CSAT_BELOW", default=0.70),
    "SCORECARD_REVIEW_COST_ABOVE": env.float("HELPDESK_SCORECARD_REVIEW_COST_ABOVE", default=10.0),
    "SCORECARD_REVIEW_SHARE_BELOW": env.float("HELPDESK_SCORECARD_REVIEW_SHARE_BELOW", default=0.03),
    "SCORECARD_GROW_CSAT_FROM": env.float("HELPDESK_SCORECARD_GROW_CSAT_FROM", default=0.85),
    "SCORECARD_GROW_COST_UP_TO": env.float("HELPDESK_SCORECARD_GROW_COST_UP_TO", default=5.0),
}

# Outbound webhooks (integrations app, docs/webhooks.md): Standard Webhooks
# deliveries from an outbox written with each change.
CELERY_BEAT_SCHEDULE["webhooks-redrive"] = {
    "task": "integrations.tasks.webhooks_redrive",
    "schedule": env.float("HELPDESK_WEBHOOK_REDRIVE_EVERY_SECONDS", default=30.0),
}
HELPDESK_WEBHOOKS = {
    "TIMEOUT_SECONDS": env.float("HELPDESK_WEBHOOK_TIMEOUT_SECONDS", default=10.0),
    # Wait after the n-th failure: BACKOFF * 2^(n-1), at most BACKOFF_MAX (10 s, 20 s, 40 s ... 1 h).
    "BACKOFF_SECONDS": env.float("HELPDESK_WEBHOOK_BACKOFF_SECONDS", default=10.0),
    "BACKOFF_MAX_SECONDS": env.float("HELPDESK_WEBHOOK_BACKOFF_MAX_SECONDS", default=3600.0),
    # Failed attempts in a row (any delivery) that pause a subscription until an admin resumes it.
    "PAUSE_AFTER_FAILURES": env.int("HELPDESK_WEBHOOK_PAUSE_AFTER_FAILURES", default=10),
    # A delivery not sent this long after it was due is enqueued again by the beat task.
    "STUCK_AFTER_SECONDS": env.float("HELPDESK_WEBHOOK_STUCK_AFTER_SECONDS", default=60.0),
    # A claim older than this outlived every timeout: its worker died mid-POST; sent again.
    "CLAIM_TIMEOUT_SECONDS": env.float("HELPDESK_WEBHOOK_CLAIM_TIMEOUT_SECONDS", default=120.0),
    # Who listens to which event is cached this long per process (0 = off).
    "SUBSCRIPTION_CACHE_SECONDS": env.float("HELPDESK_WEBHOOK_SUBSCRIPTION_CACHE_SECONDS", default=5.0),
}
# mail_admins recipients (a paused webhook subscription): comma-separated addresses.
ADMINS = [(address, address) for address in env.list("DJANGO_ADMINS", default=[])]
SERVER_EMAIL = env("DJANGO_SERVER_EMAIL", default="helpdesk@localhost")
# How Django itself sends mail (mail_admins), e.g. smtp+tls://user:password@smtp.example.com:587.
# Email channels send through their own SMTP settings, never this.
if env("DJANGO_EMAIL_URL", default=""):
    vars().update(env.email_url("DJANGO_EMAIL_URL"))

# Email channel (channels_adapters/email): IMAP polling beat task and limits.
CELERY_BEAT_SCHEDULE["email-imap-poll"] = {
    "task": "channels_adapters.email.tasks.email_imap_poll_all",
    "schedule": env.float("HELPDESK_EMAIL_POLL_EVERY_SECONDS", default=60.0),
}
CELERY_IMPORTS = [*globals().get("CELERY_IMPORTS", []), "channels_adapters.email.tasks"]
HELPDESK_EMAIL = {
    "SMTP_TIMEOUT_SECONDS": env.float("HELPDESK_EMAIL_SMTP_TIMEOUT_SECONDS", default=20.0),
    "IMAP_TIMEOUT_SECONDS": env.float("HELPDESK_EMAIL_IMAP_TIMEOUT_SECONDS", default=30.0),
    # Mails fetched per folder per poll; the rest wait for the next poll.
    "IMAP_BATCH": env.int("HELPDESK_EMAIL_IMAP_BATCH", default=200),
    # Mailgun's signed timestamp older than this is refused (replay protection).
    "RELAY_MAX_AGE_SECONDS": env.int("HELPDESK_EMAIL_RELAY_MAX_AGE_SECONDS", default=300),
}
# Relayed mail (Mailgun form, raw MIME) carries its attachments in the request body:
# Django's 2.5 MB default would refuse ordinary mail with a PDF.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("HELPDESK_MAX_WEBHOOK_BYTES", default=40 * 1024 * 1024)

# The demo sandbox (helpdesk/sandbox.py): on the embedded default the seeded
# channels send for real to a stand-in provider inside the app, so `make run`
# shows replies reaching "delivered". Never in production (production_problems).
HELPDESK_SANDBOX = env.bool("HELPDESK_SANDBOX", default=DEBUG)
# How long the sandbox waits before reporting a reply delivered: long enough to see "sent".
HELPDESK_SANDBOX_DELIVERED_AFTER_SECONDS = env.float("HELPDESK_SANDBOX_DELIVERED_AFTER_SECONDS", default=1.5)
# Email channels whose smtp_host is "sandbox" hand their mail, built by the
# adapter's real code, to this Django backend instead of an SMTP server: files
# under EMAIL_FILE_PATH to open in any mail client. Unset: no sandbox mail at all.
HELPDESK_EMAIL["SANDBOX_BACKEND"] = (
    env("HELPDESK_EMAIL_SANDBOX_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
    if HELPDESK_SANDBOX
    else ""
)
EMAIL_FILE_PATH = env("HELPDESK_EMAIL_FILE_PATH", default=str(BASE_DIR / "sent-mail"))

# Fernet keys (comma-separated, newest first) for channel credentials at rest.
# Default (DEBUG only): derived from the secret key, fine for the demo only.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
FIELD_ENCRYPTION_KEYS_FROM_ENV = bool(FIELD_ENCRYPTION_KEYS)
if not FIELD_ENCRYPTION_KEYS and SECRET_KEY:
    FIELD_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()]

# Helpdesk behaviour.
HELPDESK = {
    "REOPEN_WINDOW_DAYS": env.int("HELPDESK_REOPEN_WINDOW_DAYS", default=7),
    # What an agent sees of a customer's cases owned by other teams (docs/visibility.md):
    # "conversation" (customer messages and replies, never notes) or "hidden".
    "OTHER_TEAMS_HISTORY": env("HELPDESK_OTHER_TEAMS_HISTORY", default="conversation"),
    "DEFAULT_PHONE_REGION": env("HELPDESK_DEFAULT_PHONE_REGION", default="US"),
    "OUTBOUND_MAX_ATTEMPTS": env.int("HELPDESK_OUTBOUND_MAX_ATTEMPTS", default=6),
    "OUTBOUND_BACKOFF_SECONDS": env.float("HELPDESK_OUTBOUND_BACKOFF_SECONDS", default=5.0),
    "OUTBOUND_BACKOFF_MAX_SECONDS": env.float("HELPDESK_OUTBOUND_BACKOFF_MAX_SECONDS", default=600.0),
    # A queued message untouched this long is re-enqueued by the beat task.
    "OUTBOUND_STUCK_AFTER_SECONDS": env.float("HELPDESK_OUTBOUND_STUCK_AFTER_SECONDS", default=60.0),
    # A claimed send with no outcome after this long is shown as "may have been
    # sent", never resent blindly. Well past the slowest client timeout (SMTP's
    # 20 s); a restarting worker node settles its own cut-short sends at once.
    "OUTBOUND_CLAIM_TIMEOUT_SECONDS": env.float("HELPDESK_OUTBOUND_CLAIM_TIMEOUT_SECONDS", default=120.0),
    # A send task claims up to this many due messages and sends them in turn
    # (conversations/batches.py); it starts no new send after OUTBOUND_BATCH_SECONDS,
    # well inside the claim timeout, and gives the rest back to the queue.
    "OUTBOUND_BATCH_SIZE": env.int("HELPDESK_OUTBOUND_BATCH_SIZE", default=20),
    "OUTBOUND_BATCH_SECONDS": env.float("HELPDESK_OUTBOUND_BATCH_SECONDS", default=15.0),
    "INBOUND_MAX_ATTEMPTS": env.int("HELPDESK_INBOUND_MAX_ATTEMPTS", default=5),
    "INBOUND_STUCK_AFTER_SECONDS": env.float("HELPDESK_INBOUND_STUCK_AFTER_SECONDS", default=30.0),
    # Workers pop pending webhooks this many at a time; a drain task hands
    # over to a fresh one after INBOUND_DRAIN_SECONDS so sends are not starved.
    "INBOUND_BATCH_SIZE": env.int("HELPDESK_INBOUND_BATCH_SIZE", default=100),
    "INBOUND_DRAIN_SECONDS": env.float("HELPDESK_INBOUND_DRAIN_SECONDS", default=10.0),
    # Drains running at once. 1 keeps arrival order and leaves the other worker
    # processes to outbound sends; raise it when workers have cores to spare.
    "INBOUND_DRAINERS": env.int("HELPDESK_INBOUND_DRAINERS", default=1),
    # A drainer out of work waits this long for the next webhook before leaving
    # its worker process (0: leave at once; each burst then costs a task's trip).
    "INBOUND_DRAIN_IDLE_SECONDS": env.float("HELPDESK_INBOUND_DRAIN_IDLE_SECONDS", default=2.0),
    # A drainer's slot lease, renewed by a heartbeat while it lives: after a
    # kill -9 the slot is free again within this long.
    "INBOUND_DRAIN_LEASE_SECONDS": env.float("HELPDESK_INBOUND_DRAIN_LEASE_SECONDS", default=5.0),
    "HTTP_TIMEOUT_SECONDS": env.float("HELPDESK_HTTP_TIMEOUT_SECONDS", default=10.0),
    # Webhook channel lookups are cached this long per process (0 = off).
    "CHANNEL_CACHE_SECONDS": env.float("HELPDESK_CHANNEL_CACHE_SECONDS", default=5.0),
    # Website chat (docs/webchat.md).
    "WEBCHAT_MAX_MESSAGE_CHARS": env.int("HELPDESK_WEBCHAT_MAX_MESSAGE_CHARS", default=5000),
    "WEBCHAT_MAX_ATTACHMENT_BYTES": env.int(
        "HELPDESK_WEBCHAT_MAX_ATTACHMENT_BYTES", default=10 * 1024 * 1024
    ),
    "WEBCHAT_ATTACHMENT_TYPES": env.list(
        "HELPDESK_WEBCHAT_ATTACHMENT_TYPES",
        default=[
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "application/pdf",
            "text/plain",
            "text/csv",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ],
    ),
    # Files an agent attaches to one reply (docs/inbox.md), each at most this big.
    "REPLY_MAX_ATTACHMENT_BYTES": env.int("HELPDESK_REPLY_MAX_ATTACHMENT_BYTES", default=10 * 1024 * 1024),
    # A visitor with no socket or poll for this long has left: replies are offered by email.
    "WEBCHAT_OFFLINE_AFTER_SECONDS": env.int("HELPDESK_WEBCHAT_OFFLINE_AFTER_SECONDS", default=180),
    "WEBCHAT_TOKEN_MAX_AGE_DAYS": env.int("HELPDESK_WEBCHAT_TOKEN_MAX_AGE_DAYS", default=365),
    # Per window (seconds): what one visitor and one IP address may do before a 429.
    "WEBCHAT_RATE_LIMITS": {
        "message": {
            "window": 60,
            "per_visitor": env.int("HELPDESK_WEBCHAT_MESSAGES_PER_MINUTE", default=20),
            "per_ip": env.int("HELPDESK_WEBCHAT_MESSAGES_PER_MINUTE_PER_IP", default=120),
        },
        "session": {
            "window": 60,
            "per_visitor": 0,
            "per_ip": env.int("HELPDESK_WEBCHAT_SESSIONS_PER_MINUTE_PER_IP", default=60),
        },
        "prechat": {"window": 60, "per_visitor": 10, "per_ip": 60},
    },
}

# Login brute force (django-axes, helpdesk/login_lockout.py): after
# HELPDESK_LOGIN_FAILURE_LIMIT failed attempts for one username from one address,
# the login form, the admin and HTTP Basic answer 429 for the cool-off time.
# Admins unlock in Django admin (Axes > Access attempts) or `manage.py axes_reset`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("HELPDESK_LOGIN_LOCKOUT", default=True)
AXES_FAILURE_LIMIT = env.int("HELPDESK_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("HELPDESK_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "helpdesk.login_lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "helpdesk.login_lockout.client_ip"
# Reverse proxies in front that append to X-Forwarded-For (0: use the socket's address).
HELPDESK_TRUSTED_PROXY_COUNT = env.int("HELPDESK_TRUSTED_PROXY_COUNT", default=0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "helpdesk.login_lockout.LockoutBasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The API's views (api/) set their own authentication, throttles and error shape;
    # the KPI endpoint keeps the defaults above (its contract predates the API).
    "DEFAULT_SCHEMA_CLASS": "api.schema.HelpdeskAutoSchema",
}

# REST API v1 (api/, docs/api.md). Rates are "<count>/<second|minute|hour|day>",
# counted in the cache (Redis): per API token (or signed-in user), and per client address.
HELPDESK_API = {
    "RATE_PER_TOKEN": env("HELPDESK_API_RATE_PER_TOKEN", default="600/minute"),
    "RATE_PER_IP": env("HELPDESK_API_RATE_PER_IP", default="1200/minute"),
    "PAGE_SIZE": env.int("HELPDESK_API_PAGE_SIZE", default=50),
    "MAX_PAGE_SIZE": env.int("HELPDESK_API_MAX_PAGE_SIZE", default=200),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Helpdesk REST API",
    "DESCRIPTION": "Customers, their one timeline, cases and messages. Auth: `Authorization: Bearer "
    "<personal API token>` (made at /account/tokens/) or the browser session with CSRF. Errors: "
    '`{"error": {"code", "message", "fields"}}`. Lists: `{"results": [...], "next": url|null}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Only the API app's operations: the KPI endpoint keeps its own contract (DESIGN.md).
    "PREPROCESSING_HOOKS": ["api.schema.only_api_endpoints"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "conversations.models.CaseStatus",
        "DeliveryStatusEnum": "conversations.models.DeliveryStatus",
        "IdentityKindEnum": "customers.models.IdentityKind",
        "ChannelKindEnum": "channels_adapters.models.ChannelKind",
        "MessageKindEnum": "conversations.models.MessageKind",
        "SurveyKindEnum": "kpis.models.SurveyKind",
    },
}

LANGUAGE_CODE = "en-us"
# The languages a web-chat visitor can be answered in (the frame activates one
# per visitor); compiled catalogs are built by `make setup`, not committed.
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("HELPDESK_MEDIA_ROOT", default=str(BASE_DIR / "media")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "no_traceback_below_500": {"()": "helpdesk.logging.NoTracebackBelow500"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["no_traceback_below_500"]},
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
    # Django's default config gives "django" a console handler of its own, and its
    # records also reach the root's: every line twice. One console, the root's.
    "loggers": {
        "django": {
            "handlers": ["mail_admins"],
            "level": env("DJANGO_LOG_LEVEL", default="INFO"),
            "propagate": True,
        },
    },
}

# Meta Graph API (Messenger, Instagram, WhatsApp Cloud) and X API: base URLs are
# settings so tests and benchmarks point the real HTTP client at a local server.
GRAPH_API_BASE_URL = env("GRAPH_API_BASE_URL", default="https://graph.facebook.com").rstrip("/")
GRAPH_API_VERSION = env("GRAPH_API_VERSION", default="v23.0")
X_API_BASE_URL = env("X_API_BASE_URL", default="https://api.x.com").rstrip("/")

# Twilio (SMS, WhatsApp, Voice) and Telegram Bot API: base URLs are settings so
# tests and benchmarks point the real `twilio` and `telegram.Bot` clients at a local server.
TWILIO_API_BASE_URL = env("TWILIO_API_BASE_URL", default="https://api.twilio.com").rstrip("/")
TELEGRAM_API_BASE_URL = env("TELEGRAM_API_BASE_URL", default="https://api.telegram.org").rstrip("/")

# Production hardening (DJANGO_DEBUG=false) ------------------------------------------
#
# Defaults make `manage.py check --deploy` clean: Secure cookies, HSTS, HTTPS
# redirect. Behind a TLS-terminating proxy set DJANGO_SECURE_PROXY_SSL_HEADER=true
# (the proxy must set X-Forwarded-Proto), or every request redirects to itself.
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
# Container healthchecks talk plain HTTP to the server itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# The header alone enrolls nobody: a domain is preloaded only once its owner submits it.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Secrets that appear in this repository's own files (docker-compose.yml,
# .env.example, old defaults): a server using one has no secret at all.
PLACEHOLDER_SECRETS = frozenset({"change-me-in-production", "change-me", "changeme", "secret", "test-only"})


def production_problems() -> list[str]:
    """Why this configuration must not serve production traffic (empty when fine)."""
    from cryptography.fernet import Fernet

    problems = []
    if not SECRET_KEY:
        problems.append("DJANGO_SECRET_KEY is not set.")
    elif SECRET_KEY in PLACEHOLDER_SECRETS or SECRET_KEY.startswith("django-insecure"):
        problems.append("DJANGO_SECRET_KEY is a placeholder from the repository; generate a real one.")
    if not FIELD_ENCRYPTION_KEYS_FROM_ENV:
        problems.append("FIELD_ENCRYPTION_KEYS is not set (channel credentials are encrypted with it).")
    else:
        for index, key in enumerate(FIELD_ENCRYPTION_KEYS):
            try:
                Fernet(key.encode())
            except (ValueError, TypeError):
                problems.append(f"FIELD_ENCRYPTION_KEYS key #{index + 1} is not a Fernet key.")
    if HELPDESK_SANDBOX:
        problems.append("HELPDESK_SANDBOX is on: the demo's stand-in provider must not be served.")
    if not ALLOWED_HOSTS:
        problems.append("DJANGO_ALLOWED_HOSTS is not set.")
    elif "*" in ALLOWED_HOSTS:
        problems.append("DJANGO_ALLOWED_HOSTS contains '*': name the hosts this site answers on.")
    return problems


if not DEBUG and (_problems := production_problems()):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "Production mode (DJANGO_DEBUG=false) refuses to start:\n"
        + "\n".join(f"  - {p}" for p in _problems)
        + "\nSee docs/deploy.md; for the demo, leave DJANGO_DEBUG unset."
    )

# Customer data (privacy app, docs/privacy.md): retention of content, run by beat. 0 keeps
# forever; a channel's settings["retention"] overrides (message_content_days, inbound_event_days).
HELPDESK_PRIVACY = {
    "RETENTION_MESSAGE_CONTENT_DAYS": env.int("HELPDESK_RETENTION_MESSAGE_CONTENT_DAYS", default=0),
    "RETENTION_INBOUND_EVENT_DAYS": env.int("HELPDESK_RETENTION_INBOUND_EVENT_DAYS", default=0),
}
CELERY_BEAT_SCHEDULE["privacy-retention"] = {
    "task": "privacy.tasks.retention_run",
    "schedule": env.float("HELPDESK_RETENTION_EVERY_SECONDS", default=3600.0),
}

# Proactive outreach and campaigns (outreach app, docs/outreach.md).
INSTALLED_APPS.append("outreach")
CELERY_BEAT_SCHEDULE["outreach-tick"] = {
    "task": "outreach.tasks.outreach_tick",
    "schedule": env.float("HELPDESK_OUTREACH_TICK_EVERY_SECONDS", default=30.0),
}
OUTREACH = {
    # "HH:MM-HH:MM" in the customer's time zone (attribute "timezone"), else the
    # channel's settings["timezone"], else TIME_ZONE: a step due then waits for the end.
    "QUIET_HOURS": env("HELPDESK_OUTREACH_QUIET_HOURS", default="21:00-09:00"),
    # Longer SMS are refused when the outreach is started (each segment is billed).
    "SMS_MAX_SEGMENTS": env.int("HELPDESK_OUTREACH_SMS_MAX_SEGMENTS", default=3),
    # Messages per second per channel for campaigns, unless the campaign names a rate.
    "DEFAULT_RATE": env.float("HELPDESK_OUTREACH_DEFAULT_RATE", default=10.0),
    # Campaign outreaches started per tick at most (the throttle spreads their sends).
    "DISPATCH_BATCH": env.int("HELPDESK_OUTREACH_DISPATCH_BATCH", default=2000),
    "OPT_OUT_KEYWORDS": env.list(
        "HELPDESK_OUTREACH_OPT_OUT_KEYWORDS",
        default=["STOP", "STOPALL", "BAJA", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"],
    ),
    "OPT_IN_KEYWORDS": env.list("HELPDESK_OUTREACH_OPT_IN_KEYWORDS", default=["START", "UNSTOP", "ALTA"]),
}
# Automation (automation app, docs/automation.md): presence, auto-assignment, rules.
CELERY_BEAT_SCHEDULE["automation-sweep"] = {
    "task": "automation.tasks.automation_sweep",
    "schedule": env.float("HELPDESK_AUTOMATION_SWEEP_EVERY_SECONDS", default=60.0),
}
HELPDESK_AUTOMATION = {
    # An inbox socket not heard from this long (no heartbeat) no longer counts as online.
    "PRESENCE_TTL_SECONDS": env.int("HELPDESK_PRESENCE_TTL_SECONDS", default=90),
    # Active rules are cached this long per process (0 = off); saving a rule clears it here.
    "RULE_CACHE_SECONDS": env.float("HELPDESK_RULE_CACHE_SECONDS", default=5.0),
    # How many cases the admin's "try this rule" preview looks at.
    "PREVIEW_CASES": env.int("HELPDESK_RULE_PREVIEW_CASES", default=100),
}
# Knowledge base, help center and bot (docs/knowledge.md).
KNOWLEDGE = {
    # The bot answers only at or above this search score (calibrated by bench/kb_quality.py).
    "BOT_THRESHOLD": env.float("HELPDESK_KB_BOT_THRESHOLD", default=0.5),
    # At most this many answers per case: then a person takes over (the bot never loops).
    "BOT_MAX_ANSWERS": env.int("HELPDESK_KB_BOT_MAX_ANSWERS", default=2),
    # Where the help center's "still need help?" link goes when no web chat is on it.
    "CONTACT_URL": env("HELPDESK_KB_CONTACT_URL", default=""),
    # A bot turn still pending this long had its task lost (broker down): queued again.
    "BOT_TURN_REDRIVE_AFTER_SECONDS": env.float("HELPDESK_KB_BOT_TURN_REDRIVE_AFTER_SECONDS", default=60.0),
    # ...and past this age it is dropped: an answer minutes late is worse than the agents' one.
    "BOT_TURN_STALE_SECONDS": env.float("HELPDESK_KB_BOT_TURN_STALE_SECONDS", default=600.0),
    # Done turns are kept this many days (a redelivered task comes within minutes), then pruned.
    "BOT_TURN_KEEP_DAYS": env.int("HELPDESK_KB_BOT_TURN_KEEP_DAYS", default=30),
}
CELERY_BEAT_SCHEDULE["knowledge-bot-redrive"] = {
    "task": "knowledge.tasks.bot_turns_redrive",
    "schedule": env.float("HELPDESK_REDRIVE_EVERY_SECONDS", default=60.0),
}
CELERY_BEAT_SCHEDULE["knowledge-bot-turns-prune"] = {
    "task": "knowledge.tasks.bot_turns_prune",
    "schedule": 3600.0,
}
