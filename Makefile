# One command to run the app on the embedded default, one to run the whole suite.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/helpdesk
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: setup run test lint services clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the pinned dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]' 2>&1 | grep -v -e BuildBackendWarning -e '^ ' || true
	$(BIN)/python -c "import django, celery, channels, psycopg, pytest_django"
	touch $@

# Translations are compiled here rather than committed. compilemessages needs GNU
# gettext's msgfmt; without it `make run` still works, in English only.
# Each app may keep its own catalog (<app>/locale/); compilemessages compiles them all.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po */locale/*/LC_MESSAGES/django.po */locale/*/LC_MESSAGES/djangojs.po))
$(MO_FILES): %.mo: %.po | $(VENV)/.installed
	@if command -v msgfmt >/dev/null 2>&1; then \
		$(BIN)/python manage.py compilemessages --ignore=.venv --ignore='$(VENV)'; \
	else \
		echo "msgfmt (GNU gettext) not found: translations not compiled, the site speaks English only"; \
	fi

setup: $(VENV)/.installed $(MO_FILES)

# Embedded default: SQLite, in-memory channel layer, eager Celery, demo data.
run: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver 0.0.0.0:8000

services:
	bash scripts/services-up

# The whole suite on PostgreSQL and Redis, lint first.
test: setup services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) DJANGO_SECRET_KEY=test-only DATABASE_CONN_MAX_AGE=0 \
		$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Benchmarks print figures (bench/README.md): `make bench-ingest`, `make bench-kpis`,
# `make bench-inbox`, `make bench-email_ingest`, `make bench-meta_batch`, `make bench-voice_calls`;
# extra arguments with BENCH_ARGS="--messages 5000". Each uses its own database next to this one.
BENCHES := $(filter-out harness,$(basename $(notdir $(wildcard bench/*.py))))
.PHONY: $(addprefix bench-,$(BENCHES))
$(addprefix bench-,$(BENCHES)): bench-%: setup services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=redis://127.0.0.1:6379/9 DJANGO_SECRET_KEY=bench-only \
		$(BIN)/python bench/$*.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3
