"""Reads at 10 million messages (issue 20): inbox, thread, search, KPI API and dashboard.

Fills its own PostgreSQL database `helpdesk_bench_scale` next to DATABASE_URL with
a year of a support team's work, through PostgreSQL COPY (psycopg's
`cursor.copy`), then times the agent's and the supervisor's reads in-process
with Django's test Client (DEBUG off, one kept connection, as a web worker):

- 10,000,000 messages, 1,000,000 customers (each with one thread and one to three
  identities), 1,000,000 cases (950,000 threads with one or two cases, 50,000
  customers who never wrote), spread over 365 days, 8 channels (one a phone
  line whose cases start with a call), 8 teams of 10 agents;
- cases of 1 to ~60 messages (mean 10), customer and agent turns, internal
  notes, bot lines; 50 long threads of 200-600 messages, one of exactly 200
  (customer 1, whose second case is open); ~96% of cases answered, resolved
  after their last message unless still in progress (open, pending, snoozed),
  some reopened; SLA due times on every case, labels on some, CSAT / NPS / CES
  answers on ~12% of resolved cases; the daily KPI rollups of the year built;
- the secondary indexes and foreign keys of the big tables dropped before the
  load and built once after it (faster than row by row), COPY ... FREEZE (rows
  all-visible without a VACUUM), then ANALYZE.

The database is kept between runs (the fill takes a while): `--refill` builds it
again. Develop on a small size first (the figures then say little):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/14 \
        .venv/bin/python bench/scale.py --messages 200000 --refill
    .venv/bin/python bench/scale.py                 # 10M, filled on first use
    .venv/bin/python bench/scale.py --runs 50       # reads only, the fill kept

Targets (issue 20): inbox first page and a 200-message thread < 30 ms, search
< 50 ms, the 90-day KPI API and the dashboard < 150 ms (medians), with query
counts that do not grow with the data.
"""

import argparse
import math
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from harness import (
    BENCH_PRODUCTION_ENV,
    Step,
    copy_lines,
    database_ensure,
    database_size,
    percentile,
    secondary_schema_drop,
    secondary_schema_restore,
    sequences_reset,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "helpdesk_bench_scale"
DAY = 86_400
TEAMS = 8
AGENTS_PER_TEAM = 10
# (kind, share of the cases, identity kind its customers write from)
CHANNELS = [
    ("email", 30, "email"),
    ("whatsapp", 25, "phone"),
    ("webchat", 15, "webchat"),
    ("facebook", 10, "facebook"),
    ("voice", 8, "phone"),
    ("sms", 5, "phone"),
    ("telegram", 4, "telegram"),
    ("api", 3, "api"),
]
FIRST_NAMES = (  # noqa: SIM905 - a sentence of names reads better than a list
    "Ana Lucía María José Carmen Laura Marta Elena Sara Paula Julia Irene Alba Clara Noa Lola Emma "
    "Olivia Sofía Valeria Daniela Carla Nerea Ainhoa Rocío Pilar Teresa Rosa Inés Beatriz Antonio "
    "Manuel David Juan Javier Daniel Carlos Miguel Alejandro Pablo Sergio Jorge Alberto Luis Álvaro "
    "Diego Adrián Raúl Iván Rubén Óscar Andrés Hugo Mario Marcos Víctor Tomás Jaime Gonzalo Martín "
    "Peter Anna John Mary James Linda Robert Karen Michael Susan William Lisa Thomas Nancy Oliver Grace"
).split()
LAST_NAMES = (  # noqa: SIM905
    "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín Jiménez Ruiz "
    "Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez Vázquez "
    "Ramos Gil Ramírez Serrano Blanco Molina Morales Suárez Ortega Delgado Castro Ortiz Rubio Marín "
    "Sanz Núñez Iglesias Medina Garrido Cortés Castillo Santos Lozano Guerrero Cano Prieto Méndez "
    "Cruz Calvo Gallego Vidal León Márquez Herrera Peña Flores Cabrera Campos Vega Fuentes Carrasco "
    "Diez Caballero Reyes Nieto Aguilar Pascual Santana Herrero Lorenzo Montero Hidalgo Giménez Ibáñez"
).split()
CUSTOMER_LINES = [
    "Hi, where is my parcel for order {o}? The tracking has not moved for three days.",
    "I would like a refund for order {o}, the size is wrong.",
    "The jar in order {o} arrived cracked, can you send a replacement?",
    "Can I change the delivery address of order {o} before it ships?",
    "Hola, mi pedido {o} llegó incompleto, falta una caja.",
    "¿Podéis enviarme la factura del pedido {o}?",
    "I was charged twice for order {o}.",
    "Thanks, that worked. One more question about order {o}: is the warranty two years?",
    "Still waiting for an answer about order {o}...",
    "El repartidor dejó el pedido {o} en el portal y no está.",
    "Can you cancel order {o}? I ordered the wrong colour.",
    "My discount code did not apply to order {o}.",
]
AGENT_LINES = [
    "Hi {n}, thanks for writing. I have checked order {o} and it is with the courier, due tomorrow.",
    "Sorry about that, {n}. I have issued a refund for order {o}; it takes 3-5 working days.",
    "Hola {n}, te enviamos hoy mismo un reemplazo del pedido {o}.",
    "I have updated the address of order {o}. Anything else I can help with?",
    "Te adjunto la factura del pedido {o}.",
    "I can see the double charge on order {o}; the second one is reversed now.",
    "Order {o} is cancelled and refunded, {n}.",
    "Could you send me a photo of the damaged item from order {o}?",
]
NOTE_LINES = [
    "Courier claim opened for order {o}, reference attached.",
    "Customer is upset, second contact this week about {o}. Offered a 10% voucher.",
]
BOT_LINES = ["How did we do? Answer 1 to 5.", "¿Qué tal te hemos atendido? Responde del 1 al 5."]
LABELS = ["refund", "shipping", "damaged", "billing", "vip", "complaint"]

_DAYS: dict[int, str] = {}


def ts(t: int) -> str:
    """Epoch seconds -> a COPY timestamptz literal, without building a datetime per value."""
    d, s = divmod(t, DAY)
    day = _DAYS.get(d)
    if day is None:
        day = _DAYS[d] = time.strftime("%Y-%m-%d", time.gmtime(d * DAY))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{day} {h:02d}:{m:02d}:{s:02d}+00"


def tsn(t) -> str:
    return "\\N" if t is None else ts(t)


def nn(v) -> str:
    return "\\N" if v is None else str(v)


class C:
    """One case as planned before its rows are written."""

    __slots__ = (
        "id", "customer", "opened", "status", "agent", "team", "channel", "priority", "fr", "resolved",
        "reopen", "n", "last", "waiting", "snoozed", "identity", "answered_call", "talk",
    )  # fmt: skip


def plan(*, customers: int, messages: int, days: int, now: int, agents: list[int], team_of: dict, seed: int):
    """Every case of the year with its times and sizes, in the order of their ids (opening time)."""
    rng = random.Random(seed)
    start = now - days * DAY
    kinds = [k for k, _w, _i in CHANNELS]
    weights = [w for _k, w, _i in CHANNELS]
    voice = kinds.index("voice")
    cases = []

    def new_case(customer, opened, *, resolved_before=None, size=None):
        c = C()
        c.customer, c.opened, c.channel = customer, opened, rng.choices(range(len(kinds)), weights)[0]
        c.priority = rng.choices((0, 1, 2, 3), (10, 70, 15, 5))[0]
        c.reopen = 1 if rng.random() < 0.06 else 0
        if rng.random() < 0.02:
            c.agent, c.team = None, None  # unrouted: no team yet
        else:
            c.agent = rng.choice(agents)
            c.team = team_of[c.agent]
        c.answered_call = c.talk = None
        if c.channel == voice:
            c.answered_call = rng.random() < 0.85
            c.talk = int(30 + rng.expovariate(1 / 240)) if c.answered_call else None
        responded = c.agent is not None and rng.random() < 0.96 and c.answered_call is not False
        c.n = size or 0  # sized below (sizes add up to the messages asked for)
        c.fr = responded  # a flag until the times are known
        c.resolved = resolved_before
        cases.append(c)
        return c

    long_every = max(1, customers // 1000)  # 50 long threads among the two-case customers
    for customer in range(1, customers + 1):
        pattern = customer % 20
        if pattern == 0:
            continue  # a customer who never wrote (imported, or only left an address)
        if pattern == 1:
            first_at = start + int(rng.random() * days * DAY * 0.6)
            big = (customer // 20) % long_every == 0
            sizes = (100, 100) if customer == 1 else (rng.randint(100, 300), rng.randint(100, 300))
            first = new_case(customer, first_at, resolved_before=True, size=sizes[0] if big else None)
            second_at = first_at + int(rng.uniform(8, 120) * DAY)
            if customer == 1:
                second_at = now - 3 * DAY
            elif second_at > now - 3600:
                second_at = first_at + int(rng.uniform(0.2, 0.9) * (now - 3600 - first_at))
            second = new_case(customer, second_at, size=sizes[1] if big else None)
            if customer == 1:
                second.agent, second.team, second.fr, second.resolved = (
                    agents[0],
                    team_of[agents[0]],
                    True,
                    False,
                )
                second.channel = kinds.index("whatsapp")
                second.answered_call = second.talk = None
                first.fr, first.agent, first.team = True, agents[1], team_of[agents[1]]
            continue
        new_case(customer, start + int(rng.random() * days * DAY))

    # Sizes: the long threads are fixed; the rest share what is left, 1 + an exponential
    # draw (mean 10 overall), unanswered cases a few customer lines at most.
    fixed = sum(c.n for c in cases)
    free = [c for c in cases if not c.n]
    mean = max(2.0, (messages - fixed) / max(1, len(free)))
    for c in free:
        n = 1 + int(rng.expovariate(1 / (mean - 0.5)))
        c.n = min(n, 60) if c.fr else min(n, 3)
        if c.fr and c.n < 2:
            c.n = 2
    diff = messages - sum(c.n for c in cases)
    while diff:
        c = free[rng.randrange(len(free))]
        if diff > 0 and c.fr and c.n < 60:
            c.n += 1
            diff -= 1
        elif diff < 0 and c.n > (2 if c.fr else 1):
            c.n -= 1
            diff += 1

    # Times and status.
    for c in cases:
        responded = c.fr
        wait = int(min(2 * DAY, math.exp(rng.gauss(math.log(900), 1.0))))
        span = 0 if c.n <= 2 else int(min(10 * DAY, math.exp(rng.gauss(math.log(3 * 3600), 1.3))))
        span = max(span, 60 * (c.n - 2))
        if not responded:
            wait, span = 0, 300 * (c.n - 1)
        if c.n >= 100:
            span = c.n * 900  # long threads: a turn every quarter of an hour
        room = now - 120 - c.opened
        if wait + span > room:  # opened lately: the conversation is still going on
            scale = room / (wait + span)
            wait, span = int(wait * scale), int(span * scale)
        c.fr = c.opened + max(1, wait) if responded else None
        c.last = (c.fr if responded else c.opened) + span
        settle = int(min(2 * DAY, math.exp(rng.gauss(math.log(1800), 1.0))))
        if c.resolved is True:
            c.status, c.resolved = "resolved", c.last + settle
        elif c.resolved is False:
            c.status, c.resolved = "open", None
        elif c.last + settle < now and rng.random() > 0.004:
            c.status, c.resolved = "resolved", c.last + settle
        else:
            c.status = rng.choices(("open", "pending", "snoozed"), (65, 25, 10))[0]
            c.resolved = None
            if not responded and c.status != "open":
                c.status = "open"
            if not responded and rng.random() < 0.5:
                c.agent = None  # waiting in the team's queue
        c.snoozed = now + rng.randint(3600, 3 * DAY) if c.status == "snoozed" else None
        c.waiting = None
        if c.status == "open":
            c.waiting = c.last if responded else c.opened
        if c.resolved is not None and c.resolved > now - 60:
            c.resolved = now - 60
    cases.sort(key=lambda c: c.opened)
    for i, c in enumerate(cases, 1):
        c.id = i
    return cases


def message_rows(cases, *, channel_ids, voice_id, names):
    """The messages of every case, in COPY text format, with ids from 1 in case order."""
    mid = 0
    for c in cases:
        channel = channel_ids[c.channel]
        ident = c.identity
        order = 100_000 + c.id
        first_name = names[c.customer].split(" ")[0]
        author = nn(c.agent)
        responded = c.fr is not None
        n = c.n
        for k in range(n):
            mid += 1
            if k == 0:
                t = c.opened
            elif not responded:
                t = c.opened + (c.last - c.opened) * k // max(1, n - 1)
            elif k == 1:
                t = c.fr
            else:
                t = c.fr + (c.last - c.fr) * (k - 1) // max(1, n - 2)
            out = responded and k % 2 == 1
            if k == n - 1 and k:
                if c.status == "open":
                    out = False
                elif c.status in ("pending", "snoozed"):
                    out = True
            kind, who, user, status, msg_channel, msg_ident, meta = (
                "text",
                "customer",
                "\\N",
                "\\N",
                channel,
                ident,
                "{}",
            )
            sent = delivered = read = "\\N"
            ext = f"in-{mid}"
            error = ""
            if k == 0 and channel == voice_id:
                kind = "call"
                body = "Inbound call"
                answered = "true" if c.answered_call else "false"
                status_text = "completed" if c.answered_call else "no-answer"
                talk = f', "talk_seconds": {c.talk}' if c.talk else ""
                meta = (
                    f'{{"direction": "inbound", "call_status": "{status_text}", '
                    f'"answered": {answered}{talk}}}'
                )
            elif responded and k == 3 and n >= 6:
                kind, who, user, msg_channel, msg_ident, ext = "note", "agent", author, "\\N", "\\N", "\\N"
                body = NOTE_LINES[c.id % 2].format(o=order)
                out = True
            elif out and k == n - 1 and c.status == "resolved" and n >= 4 and c.id % 3 == 0:
                who, status, ext = "bot", "sent", f"out-{mid}"
                body = BOT_LINES[c.id % 2]
                sent = ts(t)
            elif out:
                who, user, ext = "agent", author, f"out-{mid}"
                body = AGENT_LINES[(c.id + k) % len(AGENT_LINES)].format(n=first_name, o=order)
                r = mid % 100
                sent = ts(t)
                if k >= 3 and r == 0:
                    status, error = "failed", "Provider refused the message (131047: re-engagement)"
                elif r < 50:
                    status, delivered, read = "read", ts(t + 5), ts(t + 60 + r * 30)
                elif r < 87:
                    status, delivered = "delivered", ts(t + 5)
                else:
                    status = "sent"
            else:
                body = CUSTOMER_LINES[(c.id * 7 + k) % len(CUSTOMER_LINES)].format(o=order)
            yield (
                f"{mid}\t{c.customer}\t{c.id}\t{msg_channel}\t{msg_ident}\t{'out' if out else 'in'}\t{kind}\t"
                f"{who}\t{user}\t{body}\t\t[]\t{meta}\t{ext}\t{status}\t{error}\t{ts(t)}\t{sent}\t"
                f"{delivered}\t{read}\t0"
            )


MESSAGE_COLUMNS = [
    "id", "thread_id", "case_id", "channel_id", "identity_id", "direction", "kind", "author",
    "author_user_id", "body", "html", "attachments", "meta", "external_id", "status", "error",
    "created_at", "sent_at", "delivered_at", "read_at", "attempts",
]  # fmt: skip


def fill(*, customers: int, messages: int, days: int, seed: int) -> dict:
    from django.contrib.auth.models import Group
    from django.db import connection

    from channels_adapters.models import Channel
    from conversations.models import Case, Label, Message, Team, Thread
    from customers.models import Customer, Identity
    from helpdesk import roles
    from kpis.models import CaseSla, SurveyAnswer, SurveyRequest
    from tests.factories import UserFactory

    started = time.perf_counter()
    with connection.cursor() as cursor:
        # Foreign keys checked per statement: an index or a constraint cannot be built later in
        # this transaction while deferred checks (of the users and teams below) are pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    rng = random.Random(seed + 1)
    now = int(time.time())
    channels = [
        Channel.objects.create(kind=k, name=f"{k.title()} channel", monthly_cost=300 * (i + 1))
        for i, (k, _w, _i) in enumerate(CHANNELS)
    ]
    channel_ids = [c.pk for c in channels]
    voice_id = channels[[k for k, _w, _i in CHANNELS].index("voice")].pk
    teams = [Team.objects.create(name=f"Team {i + 1}") for i in range(TEAMS)]
    labels = [Label.objects.create(name=name) for name in LABELS]
    Group.objects.get_or_create(name=roles.AGENTS)
    agents, team_of = [], {}
    for t, team in enumerate(teams):
        for i in range(AGENTS_PER_TEAM):
            username = "scale-agent" if (t, i) == (0, 0) else f"scale-agent-{t}-{i}"
            agent = UserFactory(username=username, first_name=f"Agent {t}.{i}")
            team.members.add(agent)
            agents.append(agent.pk)
            team_of[agent.pk] = team.pk
    # The agent whose inbox is measured works in three teams of the eight.
    measured = agents[0]
    for team in teams[1:3]:
        team.members.add(measured)
    UserFactory(username="scale-supervisor", role=roles.SUPERVISORS)

    with Step("plan the year (Python)"):
        cases = plan(
            customers=customers,
            messages=messages,
            days=days,
            now=now,
            agents=agents,
            team_of=team_of,
            seed=seed,
        )
    tables = [
        m._meta.db_table
        for m in (
            Customer,
            Identity,
            Thread,
            Case,
            Case.labels.through,
            Message,
            CaseSla,
            SurveyRequest,
            SurveyAnswer,
        )
    ]
    with Step("drop secondary indexes and foreign keys"):
        restore = secondary_schema_drop(tables)

    by_customer: dict[int, list] = {}
    for c in cases:
        by_customer.setdefault(c.customer, []).append(c)
    names = [""] * (customers + 1)
    for i in range(1, customers + 1):
        names[i] = (
            f"{FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]} {LAST_NAMES[rng.randrange(len(LAST_NAMES))]}"
        )
    plans = ("free", "pro", "business")

    def customer_created(customer):
        own = by_customer.get(customer)
        if own:
            return own[0].opened - rng.randint(0, 30 * DAY)
        return now - rng.randint(0, days * DAY)

    created = [0] * (customers + 1)
    with Step(f"COPY customers ({customers:,})"):

        def customer_lines():
            for i in range(1, customers + 1):
                created[i] = customer_created(i)
                yield f'{i}\t{names[i]}\t{{"plan": "{plans[i % 3]}"}}\t{ts(created[i])}'

        copy_lines(Customer, ["id", "name", "attributes", "created_at"], customer_lines())

    identity_kind = [i for _k, _w, i in CHANNELS]
    with Step("COPY identities"):

        def identity_lines():
            iid = 0
            for i in range(1, customers + 1):
                own = by_customer.get(i, [])
                kinds = {}
                for c in own:
                    kind = identity_kind[c.channel]
                    if kind not in kinds:
                        iid += 1
                        kinds[kind] = iid
                        address = _address(kind, i, names[i])
                        yield f"{iid}\t{i}\t{kind}\t{address}\t{names[i]}\t{ts(created[i])}"
                    c.identity = kinds[kind]
                if "email" not in kinds and (not own or i % 2 == 0):
                    iid += 1
                    yield f"{iid}\t{i}\temail\t{_address('email', i, names[i])}\t{names[i]}\t{ts(created[i])}"

        identities = copy_lines(
            Identity, ["id", "customer_id", "kind", "address", "display_name", "created_at"], identity_lines()
        )
    with Step(f"COPY threads ({customers:,})"):

        def thread_lines():
            for i in range(1, customers + 1):
                own = by_customer.get(i)
                yield f"{i}\t{i}\t{ts(created[i])}\t{tsn(own[-1].last if own else None)}"

        copy_lines(Thread, ["id", "customer_id", "created_at", "last_message_at"], thread_lines())
    with Step(f"COPY cases ({len(cases):,}), labels and SLA due times"):

        def case_lines():
            for c in cases:
                subject = f"Order {100_000 + c.id}"
                yield (
                    f"{c.id}\t{c.customer}\t{c.status}\t{nn(c.agent)}\t{nn(c.team)}\t{c.priority}\t"
                    f"{channel_ids[c.channel]}\t{subject}\t{ts(c.opened)}\t{tsn(c.fr)}\t{tsn(c.resolved)}\t"
                    f"{c.reopen}\t{tsn(c.snoozed)}\t{tsn(c.waiting)}\t{ts(c.last)}\t"
                    f"{ts(c.resolved or c.last)}"
                )

        copy_lines(
            Case,
            [
                "id", "thread_id", "status", "assignee_id", "team_id", "priority", "origin_channel_id",
                "subject", "opened_at", "first_response_at", "resolved_at", "reopen_count", "snoozed_until",
                "waiting_since", "last_message_at", "updated_at",
            ],
            case_lines(),
        )  # fmt: skip
        label_ids = [label.pk for label in labels]
        copy_lines(
            Case.labels.through,
            ["case_id", "label_id"],
            (f"{c.id}\t{label_ids[c.id % len(label_ids)]}" for c in cases if c.id % 7 == 0),
        )
        due = {0: 4 * 3600, 1: 3600, 2: 1800, 3: 900}
        copy_lines(
            CaseSla,
            ["case_id", "first_response_due", "resolution_due"],
            (f"{c.id}\t{ts(c.opened + due[c.priority])}\t{ts(c.opened + 2 * DAY)}" for c in cases),
        )
    with Step(f"COPY messages ({messages:,})"):
        written = copy_lines(
            Message,
            MESSAGE_COLUMNS,
            message_rows(cases, channel_ids=channel_ids, voice_id=voice_id, names=names),
        )
    with Step("COPY survey requests and answers"):
        surveys = []
        for c in cases:
            if c.resolved is None or c.fr is None or rng.random() >= 0.3:
                continue
            kind = rng.choices(("csat", "nps", "ces"), (60, 25, 15))[0]
            answered = c.resolved + 60 + int(math.exp(rng.gauss(math.log(1800), 1.2)))
            if rng.random() >= 0.4 or answered >= now:
                answered = None
            if kind == "csat":
                score = rng.choices((1, 2, 3, 4, 5), (5, 5, 10, 30, 50))[0]
            elif kind == "nps":
                score = rng.choices(range(11), (2, 1, 1, 2, 2, 4, 6, 10, 17, 25, 30))[0]
            else:
                score = rng.choices(range(1, 8), (3, 4, 8, 15, 25, 25, 20))[0]
            surveys.append((c, kind, answered, score))
        request_lines = (
            f"{i}\t{kind}\t{c.id}\t{c.customer}\t{channel_ids[c.channel]}\t{nn(c.agent)}\t{nn(c.team)}\t"
            f"{'answered' if answered else 'sent'}\t{ts(c.resolved)}\t{ts(c.resolved)}\t"
            f"{ts(c.resolved + 60)}\t{ts(c.resolved)}\t0\t"
            for i, (c, kind, answered, _score) in enumerate(surveys, 1)
        )
        copy_lines(
            SurveyRequest,
            [
                "id", "kind", "case_id", "customer_id", "channel_id", "agent_id", "team_id", "status",
                "created_at", "send_after", "sent_at", "case_resolved_at", "case_reopen_count", "error",
            ],
            request_lines,
        )  # fmt: skip
        answer_lines = (
            f"{i}\t{i}\t{kind}\t{score}\t{c.id}\t{c.customer}\t{channel_ids[c.channel]}\t{nn(c.agent)}\t"
            f"{nn(c.team)}\t{'message' if i % 3 else 'link'}\t{ts(answered)}"
            for i, (c, kind, answered, score) in enumerate(surveys, 1)
            if answered
        )
        answers = copy_lines(
            SurveyAnswer,
            [
                "id", "request_id", "kind", "score", "case_id", "customer_id", "channel_id", "agent_id",
                "team_id", "via", "answered_at",
            ],
            answer_lines,
        )  # fmt: skip
    loaded = time.perf_counter()
    print("  build the indexes and foreign keys back:")
    with Step("  indexes and constraints"):
        secondary_schema_restore(restore)
    sequences_reset(tables)
    with Step("ANALYZE"), connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "cases": len(cases),
        "messages": written,
        "identities": identities,
        "surveys": len(surveys),
        "answers": answers,
        "load_s": loaded - started,
        "fill_s": time.perf_counter() - started,
    }


def _address(kind: str, customer: int, name: str) -> str:
    if kind == "email":
        ascii_name = name.lower().translate(str.maketrans("áéíóúñü", "aeiounu")).replace(" ", ".")
        return f"{ascii_name}.{customer}@example.com"
    if kind == "phone":
        return f"+3461{customer:07d}"
    if kind == "facebook":
        return f"{7_000_000_000_000 + customer * 7919}"
    if kind == "telegram":
        return f"{500_000_000 + customer}"
    if kind == "webchat":
        return f"visitor-{customer:08x}"
    return f"crm-{customer}"


def measure(client, url: str, runs: int, data: dict | None = None) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def get():
        response = client.get(url, data or {})
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        return response

    for _ in range(3):  # warm caches, templates, the connection
        get()
    load = os.getloadavg()[0]
    times, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        get()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    sql = []
    for _ in range(5):
        with CaptureQueriesContext(connection) as queries:
            response = get()
        sql.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
    return {
        "median": statistics.median(times),
        "p95": percentile(times, 95),
        "min": min(times),
        # This process's CPU (Python: the view, the ORM, the templates), and the time spent
        # waiting for PostgreSQL: what bounds a read, whatever else runs on the cores.
        "cpu": statistics.median(cpu),
        "sql": statistics.median(sql),
        "queries": len(queries),
        "load": (load + os.getloadavg()[0]) / 2,
        "bytes": len(response.content),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, help="default: a tenth of --messages")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--refill", action="store_true", help="drop the bench database and fill it again")
    parser.add_argument(
        "--database", default=DB_NAME, help="e.g. a small development fill next to the big one"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="WORDS",
        help="time only the reads whose label contains WORDS (repeatable), e.g. --only thread",
    )
    args = parser.parse_args()
    customers = args.customers or max(20, args.messages // 10)

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    os.environ["DATABASE_URL"] = database_ensure(base_url=base, name=args.database, recreate=args.refill)
    os.environ.pop("REDIS_URL", None)  # nothing is sent: pushes go to the in-memory layer
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
    # Each request would get a fresh connection otherwise (DEBUG off): keep one, as a web worker does.
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")
    os.environ.update(BENCH_PRODUCTION_ENV)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from conversations.models import Case, Message
    from customers.models import Customer
    from kpis.models import KpiDaily
    from kpis.services import kpi_rollup_days

    setup_test_environment()  # lets the test Client run against this real database
    with Step("migrate"):
        call_command("migrate", verbosity=0)
    users = get_user_model().objects
    today = timezone.localdate()
    if not users.filter(username="scale-supervisor").exists():
        print(f"Filling {args.messages:,} messages, {customers:,} customers over {args.days} days (COPY) ...")
        with transaction.atomic():  # all or nothing: a failed fill leaves no half data set
            filled = fill(customers=customers, messages=args.messages, days=args.days, seed=args.seed)
        with Step(f"KPI rollups of {args.days} days (kpi_rollup_days)"):
            kpi_rollup_days(start=today - timedelta(days=args.days + 1), end=today)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE kpis_kpidaily")
        print(
            f"Fill: {filled['fill_s']:.0f} s ({filled['load_s']:.0f} s COPY, the rest indexes and ANALYZE); "
            f"{filled['identities']:,} identities, {filled['surveys']:,} surveys, "
            f"{filled['answers']:,} answers"
        )
    size = database_size(args.database)
    thread_of_one = Case.objects.filter(thread__customer_id=1).order_by("-opened_at").first()
    print(
        f"Data: {Customer.objects.count():,} customers, {Case.objects.count():,} cases "
        f"({Case.objects.exclude(status='resolved').count():,} not resolved), "
        f"{Message.objects.count():,} messages, {KpiDaily.objects.count():,} rollup rows; "
        f"database {size / 2**30:.1f} GiB"
    )
    big = Message.objects.filter(thread_id=thread_of_one.thread_id).count()
    agent = users.get(username="scale-agent")
    supervisor = users.get(username="scale-supervisor")
    as_agent, as_supervisor = Client(), Client()
    as_agent.force_login(agent)
    as_supervisor.force_login(supervisor)
    customer = Customer.objects.get(pk=1)
    from customers.models import Identity

    email = Identity.objects.filter(kind="email").order_by("pk").values_list("address", flat=True)[500]
    phone = "+34 61" + "0000001"
    order = f"{100_000 + thread_of_one.pk}"
    kpi_query = {
        "from": (today - timedelta(days=90)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
    }
    reads = [
        ("inbox first page, agent (3 of 8 teams)", 30, as_agent, "/inbox/", None),
        ("inbox first page, supervisor", 30, as_supervisor, "/inbox/", None),
        ("inbox Mine, agent", 30, as_agent, "/inbox/?view=mine", None),
        (f"thread of {big} messages, agent", 30, as_agent, f"/inbox/case/{thread_of_one.pk}/", None),
        (
            f"thread of {big} messages, supervisor",
            30,
            as_supervisor,
            f"/inbox/case/{thread_of_one.pk}/",
            None,
        ),
        (f"search by name ({customer.name}), agent", 50, as_agent, "/inbox/", {"q": customer.name}),
        (f"search by name ({customer.name}), supervisor", 50, as_supervisor, "/inbox/", {"q": customer.name}),
        ("search by email, agent", 50, as_agent, "/inbox/", {"q": email}),
        ("search by phone, agent", 50, as_agent, "/inbox/", {"q": phone}),
        (f"search by order number ({order}), agent", 50, as_agent, "/inbox/", {"q": order}),
        ("search by a common surname (García: 1 in 78), agent", 50, as_agent, "/inbox/", {"q": "García"}),
        (
            "inbox All view (every case, newest first), supervisor",
            30,
            as_supervisor,
            "/inbox/?view=all",
            None,
        ),
        ("customer search (merge dialog), agent", 50, as_agent, "/inbox/customers/", {"q": customer.name}),
        ("90-day KPI API, supervisor", 150, as_supervisor, "/api/v1/kpis/", kpi_query),
        ("dashboard (90 days), supervisor", 150, as_supervisor, "/dashboard/", kpi_query),
    ]
    print(
        f"\nServer time in-process (Django test Client, DEBUG off), {args.runs} runs each, uptime load noted:"
    )
    print(
        f"  {'read':<52} {'target':>7} {'median':>8} {'p95':>8} {'min':>8} {'cpu':>8} {'sql':>8} "
        f"{'queries':>7} {'load':>5}  met"
    )
    missed = 0
    if args.only:
        reads = [r for r in reads if any(words in r[0] for words in args.only)]
    for label, target, client, url, data in reads:
        r = measure(client, url, args.runs, data)
        met = r["median"] < target
        missed += not met
        print(
            f"  {label:<52} {target:>5}ms {r['median']:6.1f}ms {r['p95']:6.1f}ms {r['min']:6.1f}ms "
            f"{r['cpu']:6.1f}ms {r['sql']:6.1f}ms {r['queries']:>7} {r['load']:5.1f}  "
            f"{'yes' if met else 'NO'}",
            flush=True,
        )
    print(f"Load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
