"""KPI scale benchmark: 1,000,000 messages over 100,000 cases across 90 days.

Creates its own PostgreSQL database `helpdesk_bench_kpis` next to DATABASE_URL,
migrates it, fills it in SQL (INSERT ... SELECT generate_series, a few
minutes at most on 2 cores), builds the daily rollups, then prints the median
time of the 90-day KPI API call, the dashboard page and the channel scorecard
(page and API), all through
Django's test Client (target: < 300 ms each).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/kpis.py
    .venv/bin/python bench/kpis.py --cases 20000 --runs 5      # quicker

The data: 8 channels (one of them phone, whose first message is a call with
the documented meta keys), 40 agents in 4 teams, one customer and one thread
per case; ~90% of cases resolved, ~95% answered, some reopened, bot and note
messages mixed in; CSAT, NPS and CES answers on a third of the cases; an SLA
due time on every case.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from harness import BENCH_PRODUCTION_ENV, Step, database_recreate, database_url, model_defaults

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "helpdesk_bench_kpis"


def insert_select(
    model, explicit: dict[str, str], from_sql: str, select_params: list = (), from_params: list = ()
) -> None:
    from django.db import connection

    extra_columns, extra_values = model_defaults(model, set(explicit))
    columns = [*explicit, *extra_columns]
    select = [*explicit.values(), *(["%s"] * len(extra_values))]
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(select)} FROM {from_sql}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*select_params, *extra_values, *from_params])


def fill(*, cases: int, days: int) -> dict:
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from channels_adapters.models import Channel
    from conversations.models import Case, Message, Team, Thread
    from customers.models import Customer
    from helpdesk import roles
    from kpis.models import CaseSla, SurveyAnswer, SurveyRequest
    from tests.factories import UserFactory

    kinds = ["email", "whatsapp", "facebook", "sms", "voice", "telegram", "webchat", "api"]
    channels = [
        Channel.objects.create(kind=k, name=f"{k.title()} channel", monthly_cost=100 * (i + 1))
        for i, k in enumerate(kinds)
    ]
    teams = [Team.objects.create(name=f"Team {i}") for i in range(4)]
    agents = [UserFactory(username=f"bench-agent{i}", first_name=f"Agent{i}") for i in range(40)]
    for i, agent in enumerate(agents):
        teams[i % 4].members.add(agent)
    supervisor = UserFactory(username="bench-supervisor", role=roles.SUPERVISORS)
    Group.objects.get_or_create(name=roles.AGENTS)
    now = timezone.now()
    start = now - timedelta(days=days)
    channel_ids = [c.pk for c in channels]
    voice_id = channels[kinds.index("voice")].pk
    agent_ids = [a.pk for a in agents]
    team_of = [teams[i % 4].pk for i in range(len(agents))]

    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
    insert_select(
        Customer,
        {"name": "'Customer ' || g", "attributes": "'{}'::jsonb", "created_at": "%s"},
        "generate_series(1, %s) g",
        select_params=[start],
        from_params=[cases],
    )
    insert_select(
        Thread,
        {"customer_id": "id", "created_at": "%s"},
        f"{Customer._meta.db_table}",
        select_params=[start],
    )
    # One case per thread; the random draws live in the inner select so each row keeps its own.
    case_from = f"""(
        SELECT t.id AS thread_id,
               %s::timestamptz + (random() * %s) * interval '1 day' AS opened_at,
               random() AS r_status, random() AS r_resp, random() AS r_wait, random() AS r_res,
               random() AS r_reopen, floor(random() * %s)::int AS a, floor(random() * %s)::int AS ch
        FROM {Thread._meta.db_table} t
    ) s"""
    with Step(f"cases ({cases:,})"):
        insert_select(
            Case,
            {
                "thread_id": "thread_id",
                "status": "CASE WHEN r_status < 0.9 THEN 'resolved' ELSE 'open' END",
                "assignee_id": "(%s::bigint[])[a + 1]",
                "team_id": "(%s::bigint[])[a + 1]",
                "origin_channel_id": "(%s::bigint[])[ch + 1]",
                "priority": "1",
                "subject": "'Bench case'",
                "opened_at": "opened_at",
                "first_response_at": "CASE WHEN r_resp < 0.95 "
                "THEN opened_at + r_wait * interval '2 hours' END",
                "resolved_at": "CASE WHEN r_status < 0.9 THEN opened_at + interval '3 hours' "
                "+ r_res * interval '2 days' END",
                "reopen_count": "CASE WHEN r_reopen < 0.1 THEN 1 ELSE 0 END",
                "last_message_at": "opened_at",
                "updated_at": "opened_at",
            },
            case_from,
            select_params=[agent_ids, team_of, channel_ids],
            from_params=[start, days, len(agent_ids), len(channel_ids)],
        )
    # Ten messages per case: the customer's first (a call on the phone channel),
    # the first agent answer, then a conversation with a bot line and a note.
    message_from = f"""{Case._meta.db_table} c
        JOIN {Thread._meta.db_table} t ON t.id = c.thread_id
        CROSS JOIN generate_series(0, 9) k"""
    at = (
        "CASE WHEN k = 0 THEN c.opened_at "
        "WHEN k = 1 AND c.first_response_at IS NOT NULL THEN c.first_response_at "
        "ELSE coalesce(c.first_response_at, c.opened_at) + k * interval '7 minutes' END"
    )
    # Answered cases get agent messages at k = 1, 3, 5, 7, 9; two in five only the first one (FCR).
    outbound = "(k %% 2 = 1 AND c.first_response_at IS NOT NULL AND (k = 1 OR c.id %% 5 >= 2))"
    bot = "(k = 9 AND c.id %% 3 = 0)"
    with Step(f"messages ({cases * 10:,})"):
        insert_select(
            Message,
            {
                "thread_id": "c.thread_id",
                "case_id": "c.id",
                "channel_id": "CASE WHEN k = 8 THEN NULL ELSE c.origin_channel_id END",
                "direction": f"CASE WHEN k = 8 OR {bot} OR {outbound} THEN 'out' ELSE 'in' END",
                "kind": f"CASE WHEN k = 0 AND c.origin_channel_id = {voice_id} THEN 'call' "
                "WHEN k = 8 THEN 'note' ELSE 'text' END",
                "author": f"CASE WHEN {bot} THEN 'bot' WHEN k = 8 OR {outbound} THEN 'agent' "
                "ELSE 'customer' END",
                "author_user_id": f"CASE WHEN {bot} THEN NULL "
                f"WHEN k = 8 OR {outbound} THEN c.assignee_id END",
                "body": "'Message ' || k",
                "html": "''",
                "attachments": "'[]'::jsonb",
                "meta": f"CASE WHEN k = 0 AND c.origin_channel_id = {voice_id} THEN jsonb_build_object("
                "'direction', 'inbound', 'call_status', CASE WHEN c.id %% 7 = 0 THEN 'no-answer' "
                "ELSE 'completed' END, 'answered', c.id %% 7 <> 0, 'talk_seconds', "
                "CASE WHEN c.id %% 7 <> 0 THEN 30 + c.id %% 600 END) ELSE '{}'::jsonb END",
                "status": f"CASE WHEN {bot} OR {outbound} THEN 'sent' END",
                "error": "''",
                "created_at": at,
                "attempts": "0",
            },
            message_from,
        )
    with Step("SLA due times, surveys and answers"):
        insert_select(
            CaseSla,
            {"case_id": "id", "first_response_due": "opened_at + interval '1 hour'"},
            Case._meta.db_table,
        )
        insert_select(
            SurveyRequest,
            {
                "kind": "(ARRAY['csat', 'nps', 'ces'])[c.id %% 3 + 1]",
                "case_id": "c.id",
                "customer_id": "t.customer_id",
                "channel_id": "c.origin_channel_id",
                "agent_id": "c.assignee_id",
                "team_id": "c.team_id",
                "status": "'answered'",
                "created_at": "c.resolved_at",
                "send_after": "c.resolved_at",
                "sent_at": "c.resolved_at",
                "case_resolved_at": "c.resolved_at",
                "case_reopen_count": "0",
                "error": "''",
            },
            f"{Case._meta.db_table} c JOIN {Thread._meta.db_table} t ON t.id = c.thread_id "
            "WHERE c.resolved_at IS NOT NULL AND c.id %% 10 < 4 AND c.resolved_at < now()",
        )
        insert_select(
            SurveyAnswer,
            {
                "request_id": "r.id",
                "kind": "r.kind",
                "score": "CASE r.kind WHEN 'csat' THEN 1 + r.id %% 5 WHEN 'nps' THEN r.id %% 11 "
                "ELSE 1 + r.id %% 7 END",
                "case_id": "r.case_id",
                "customer_id": "r.customer_id",
                "channel_id": "r.channel_id",
                "agent_id": "r.agent_id",
                "team_id": "r.team_id",
                "via": "'message'",
                "answered_at": "r.sent_at + interval '20 minutes'",
            },
            f"{SurveyRequest._meta.db_table} r",
        )
    with Step("ANALYZE"), connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"supervisor": supervisor}


def median_ms(fn, runs: int) -> tuple[float, list[float]]:
    fn()  # warm-up: connection, imports, template loading
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the database filled by an earlier run; only time the reads.",
    )
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if args.reuse:
        os.environ["DATABASE_URL"] = database_url(base_url=base, name=DB_NAME)
    else:
        os.environ["DATABASE_URL"] = database_recreate(base_url=base, name=DB_NAME)
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
    # Each request gets a fresh connection otherwise (DEBUG off): keep one, as a web worker does.
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")
    os.environ.update(BENCH_PRODUCTION_ENV)
    os.environ.pop("REDIS_URL", None)  # no broker or channel layer needed: nothing is sent
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from conversations.models import Message
    from kpis.models import KpiDaily
    from kpis.selectors import kpi_report
    from kpis.services import kpi_rollup_days

    setup_test_environment()  # lets the test Client run against this real database
    today = timezone.localdate()
    start = today - timedelta(days=args.days)
    if args.reuse:
        from django.contrib.auth import get_user_model

        # A fill from an older checkout lacks the tables of apps added since (a login writes
        # the audit log): bring its schema up to date, the rows stay.
        with Step("migrate"):
            call_command("migrate", verbosity=0)
        data = {"supervisor": get_user_model().objects.get(username="bench-supervisor")}
        rows = KpiDaily.objects.count()
    else:
        with Step("migrate"):
            call_command("migrate", verbosity=0)
        data = fill(cases=args.cases, days=args.days)
        with Step(f"rollups for {args.days} days (rebuild_kpis)"):
            rows = kpi_rollup_days(start=start, end=today)
    print(
        f"  {Message.objects.count():,} messages, {rows:,} rollup rows ({KpiDaily.objects.count():,} stored)"
    )

    client = Client()
    client.force_login(data["supervisor"])
    # The last 90 days plus today (computed live): [start, today + 1).
    query = {"from": start.isoformat(), "to": (today + timedelta(days=1)).isoformat()}

    def reader(path: str):
        def read():
            response = client.get(path, query)
            assert response.status_code == 200, response.content[:300]
            return response

        return read

    api, dashboard = reader("/api/v1/kpis/"), reader("/dashboard/")
    scorecard, scorecard_api = reader("/dashboard/channels/"), reader("/api/v1/kpis/channels/")

    # Count queries with a wrapper: the request cycle resets connection.queries.
    counted = []

    def count(execute, sql, params, many, context):
        counted.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        totals = api().json()["totals"]
        api_queries = len(counted)
        dashboard()
        page_queries = len(counted) - api_queries
        scorecard()
        scorecard_queries = len(counted) - api_queries - page_queries
        scorecard_api()
        scorecard_api_queries = len(counted) - api_queries - page_queries - scorecard_queries
    api_ms, api_all = median_ms(api, args.runs)
    page_ms, page_all = median_ms(dashboard, args.runs)
    card_ms, card_all = median_ms(scorecard, args.runs)
    card_api_ms, card_api_all = median_ms(scorecard_api, args.runs)
    started = time.perf_counter()
    kpi_report(start=start, end=today + timedelta(days=1), use_rollups=False)
    live_ms = (time.perf_counter() - started) * 1000

    print()
    for label, ms, runs, queries in (
        ("90-day KPI API", api_ms, api_all, api_queries),
        ("Dashboard page", page_ms, page_all, page_queries),
        ("Scorecard page", card_ms, card_all, scorecard_queries),
        ("Scorecard API", card_api_ms, card_api_all, scorecard_api_queries),
    ):
        each = ", ".join(f"{t:.0f}" for t in runs)
        print(f"{label:<16} median {ms:7.1f} ms  (runs: {each})  {queries} queries")
    print(f"Same 90 days without rollups (all live, for reference): {live_ms:.0f} ms")
    print(
        f"Totals: volume {totals['volume']:,}, TME {totals['tme_seconds']:.0f} s, FCR {totals['fcr']:.3f}, "
        f"CSAT {totals['csat']:.3f}, abandonment {totals['abandonment_rate']:.3f}"
    )
    target = 300
    verdict = "OK" if max(api_ms, page_ms, card_ms, card_api_ms) < target else "OVER TARGET"
    print(f"Target < {target} ms each: {verdict}")


if __name__ == "__main__":
    main()
