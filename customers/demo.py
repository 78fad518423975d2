"""The demo's generated history: `--customers` customers with `--days` of resolved
cases on every channel, calls, SLAs and survey answers, bulk-inserted so the
dashboard has something to show at first sight. Deterministic: a fixed seed,
times relative to now. Called by `manage.py seed_demo`."""

import math
import random
from datetime import timedelta

from django.utils.translation import gettext

from conversations.models import (
    Author,
    Case,
    CaseStatus,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Priority,
    Team,
    Thread,
)
from customers.models import Customer, Identity
from kpis.models import CaseSla, SlaPolicy, SurveyAnswer, SurveyRequest

SEED = 18  # a fixed seed: every run of the same version builds the same demo

# First response and resolution targets in minutes, per channel kind (voice: calls are answered live).
SLA_TARGETS = {
    "webchat": (5, 8 * 60),
    "whatsapp": (30, 24 * 60),
    "facebook": (60, 24 * 60),
    "telegram": (60, 24 * 60),
    "sms": (60, 24 * 60),
    "api": (120, 2 * 24 * 60),
    "email": (8 * 60, 3 * 24 * 60),
}

# Per channel: share of customers, identity kind, median first response (minutes),
# share never answered, and CSAT score weights for 1..5. Unequal on purpose: a
# dashboard where every channel looks alike shows nothing worth deciding.
PROFILES = {
    "email": (0.26, "email", 150, 0.03, (3, 4, 10, 33, 50)),
    "whatsapp": (0.20, "phone", 9, 0.03, (2, 3, 8, 30, 57)),
    "webchat": (0.15, "webchat", 2, 0.06, (3, 4, 9, 32, 52)),
    "voice": (0.12, "phone", 0, 0.14, (4, 5, 11, 35, 45)),
    "facebook": (0.10, "facebook", 25, 0.07, (5, 7, 14, 34, 40)),
    "sms": (0.07, "phone", 35, 0.08, (6, 8, 16, 32, 38)),
    "api": (0.06, "email", 45, 0.02, (2, 3, 10, 35, 50)),
    "telegram": (0.04, "telegram", 70, 0.18, (14, 12, 18, 30, 26)),
}

FIRST_NAMES = [
    "Liam",
    "Olivia",
    "Noah",
    "Emma",
    "Mateo",
    "Sofia",
    "Lucas",
    "Mia",
    "Hugo",
    "Lea",
    "Omar",
    "Aisha",
    "Yuki",
    "Chen",
    "Ivan",
    "Nina",
    "Pedro",
    "Lucia",
    "Karim",
    "Zara",
    "Jonas",
    "Elif",
    "Tomas",
    "Ines",
    "Arjun",
    "Priya",
    "Felix",
    "Clara",
    "Diego",
    "Marta",
    "Sven",
    "Freya",
    "Kofi",
    "Amara",
    "Leo",
    "Rosa",
    "Ali",
    "Hana",
]
LAST_NAMES = [
    "Garcia",
    "Smith",
    "Muller",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Novak",
    "Jensen",
    "Silva",
    "Tanaka",
    "Kim",
    "Okafor",
    "Haddad",
    "Costa",
    "Petrov",
    "Larsen",
    "Moreau",
    "Schmidt",
    "Lopez",
    "Nguyen",
    "Patel",
    "Fischer",
    "Romano",
    "Martin",
    "Santos",
    "Weber",
    "Horvat",
    "Lind",
    "Ito",
    "Mensah",
]
TOPICS = (
    ("Where is my order #{n}?", "Your parcel left our warehouse yesterday; here is the tracking link."),
    ("I was charged twice for order #{n}.", "You're right, the duplicate charge is refunded now."),
    ("Can I change the size of order #{n}?", "Done: I've switched it before it ships."),
    ("The item from order #{n} arrived damaged.", "Sorry! A replacement ships today at no cost."),
    ("How do I return order #{n}?", "I've emailed you a prepaid return label."),
    ("Do you have this in blue?", "Yes, it's back in stock; I've put one aside for you."),
    ("My discount code does not work.", "I've applied the discount to your order by hand."),
    ("Can I pick up order #{n} in store?", "Yes, it'll be ready for pickup from tomorrow."),
)
FOLLOW_UPS = ("Thanks, and when will it arrive?", "Great, thank you!", "OK. Anything else I need to do?")
CLOSINGS = ("Nothing else: it's on its way to you.", "Glad I could help. Have a great day!")


def _minutes(rng: random.Random, median: float, spread: float = 0.9) -> float:
    """A skewed duration around a median: most answers quick, a few very late."""
    return max(0.2, rng.lognormvariate(math.log(median), spread))


def _address(kind: str, n: int) -> str:
    return {
        "email": f"shopper{n}@seed.example",
        # 202-555-01xx style numbers are reserved for fiction.
        "phone": f"+1202555{n:04d}",
        "facebook": f"psid-seed-{n}",
        "telegram": f"77{n:06d}",
        "webchat": f"visitor-seed-{n}",
    }[kind]


def generate_history(*, channels, users, days, customers, now, rng) -> dict:
    """`customers` customers with `days` of resolved cases, bulk-inserted; returns what it made."""
    made = {"customers": customers, "cases": 0, "calls": 0, "answers": 0}
    if not customers or not days:
        return made
    agents = [users["agent1"], users["agent2"], users["supervisor"]]
    teams = {team.name: team for team in Team.objects.all()}
    kinds = list(PROFILES)
    weights = [PROFILES[kind][0] for kind in kinds]
    policies = {policy.channel_id: policy for policy in SlaPolicy.objects.all()}

    people = Customer.objects.bulk_create(
        [Customer(name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}") for _ in range(customers)]
    )
    threads = Thread.objects.bulk_create([Thread(customer=person) for person in people])
    # Each customer's channels: one they prefer, and for one in four a second one (cross-channel history).
    plans, identities = [], []
    for n, (person, thread) in enumerate(zip(people, threads, strict=True)):
        # The first few cover every channel, so even a small demo shows them all.
        own = [kinds[n] if n < len(kinds) else rng.choices(kinds, weights)[0]]
        if rng.random() < 0.25:
            own.append(rng.choices(kinds, weights)[0])
        ids = {}
        for kind in own:
            identity_kind = PROFILES[kind][1]
            if identity_kind not in ids:
                ids[identity_kind] = Identity(
                    customer=person,
                    kind=identity_kind,
                    address=_address(identity_kind, n),
                    display_name=person.name,
                )
                identities.append(ids[identity_kind])
        plans.append((person, thread, own, ids))
    Identity.objects.bulk_create(identities)

    # Cases, with what happens in them decided up front so messages can follow in one insert.
    cases, stories = [], []
    span = days * 24 * 60
    for _person, thread, own, ids in plans:
        # About three contacts per customer in 90 days, fewer in a shorter demo.
        for _ in range(max(1, round(rng.gauss(3, 1.2) * min(days, 90) / 90))):
            kind = own[0] if len(own) == 1 or rng.random() < 0.7 else own[1]
            _share, identity_kind, median, unanswered, _csat = PROFILES[kind]
            channel = channels[kind]
            opened = now - timedelta(minutes=rng.uniform(60, span))
            # Half the weekend's contacts move to Thursday and Friday: quieter weekends, like real traffic.
            earlier = opened - timedelta(days=2)
            if opened.weekday() >= 5 and rng.random() < 0.5 and earlier >= now - timedelta(minutes=span):
                opened = earlier
            answered = rng.random() >= unanswered
            if kind == "voice":
                first = opened + timedelta(seconds=rng.uniform(5, 60)) if answered else None
            else:
                first = opened + timedelta(minutes=_minutes(rng, median)) if answered else None
            agent_replies = 1 if rng.random() < 0.62 else rng.choice((2, 2, 3))
            reopened = answered and rng.random() < 0.07
            last = first or opened
            resolved = last + timedelta(minutes=_minutes(rng, 40 if kind != "email" else 300)) * agent_replies
            if resolved >= now:
                # Still in flight at "now": keep history resolved so the inbox shows the named cases.
                resolved = now - timedelta(minutes=1)
                first = min(first, resolved) if first else None
            topic = rng.choice(TOPICS)
            number = rng.randint(1000, 9999)
            case = Case(
                thread=thread,
                origin_channel=channel,
                opened_at=opened,
                status=CaseStatus.RESOLVED,
                assignee=rng.choice(agents) if answered or rng.random() < 0.5 else None,
                team=teams["Billing" if "charged" in topic[0] or "discount" in topic[0] else "Support"],
                priority=Priority.HIGH if rng.random() < 0.1 else Priority.NORMAL,
                subject=topic[0].format(n=number)[:300],
                first_response_at=first,
                resolved_at=resolved,
                reopen_count=1 if reopened else 0,
                last_message_at=resolved,
            )
            cases.append(case)
            stories.append((kind, ids[identity_kind], topic, number, agent_replies))
    Case.objects.bulk_create(cases, batch_size=1000)
    made["cases"] = len(cases)

    messages, slas, requests, scores = [], [], [], []
    for case, (kind, identity, topic, number, agent_replies) in zip(cases, stories, strict=True):
        channel = channels[kind]
        base = {"thread_id": case.thread_id, "case": case, "channel": channel, "identity": identity}
        first, resolved = case.first_response_at, case.resolved_at
        if kind == "voice":
            talk = int(rng.uniform(60, 600)) if first else 0
            messages.append(
                Message(
                    **base,
                    direction=Direction.IN,
                    kind=MessageKind.CALL,
                    author=Author.CUSTOMER,
                    body=gettext("Inbound call, %(minutes)s min") % {"minutes": talk // 60}
                    if first
                    else gettext("Missed call"),
                    meta={
                        "direction": "inbound",
                        "call_status": "completed" if first else "no-answer",
                        "answered": bool(first),
                        "talk_seconds": talk,
                    },
                    created_at=case.opened_at,
                )
            )
            made["calls"] += 1
        else:
            messages.append(
                Message(
                    **base,
                    direction=Direction.IN,
                    author=Author.CUSTOMER,
                    body=topic[0].format(n=number),
                    created_at=case.opened_at,
                )
            )
            if first:
                # Replies between the first response and the resolution, a customer line between them.
                gap = (resolved - first) / (agent_replies * 2)
                bodies = [topic[1]] + [CLOSINGS[i % len(CLOSINGS)] for i in range(agent_replies - 1)]
                for i, body in enumerate(bodies):
                    at = first + gap * 2 * i
                    if i:
                        messages.append(
                            Message(
                                **base,
                                direction=Direction.IN,
                                author=Author.CUSTOMER,
                                body=rng.choice(FOLLOW_UPS),
                                created_at=at - gap,
                            )
                        )
                    messages.append(
                        Message(
                            **base,
                            direction=Direction.OUT,
                            author=Author.AGENT,
                            author_user=case.assignee,
                            body=body,
                            status=DeliveryStatus.READ if rng.random() < 0.7 else DeliveryStatus.DELIVERED,
                            sent_at=at,
                            delivered_at=at + timedelta(seconds=3),
                            created_at=at,
                        )
                    )
        policy = policies.get(channel.pk) or policies.get(None)
        if kind != "voice" and policy:
            due = case.opened_at + timedelta(minutes=policy.first_response_minutes)
            resolution_due = case.opened_at + timedelta(minutes=policy.resolution_minutes)
            slas.append(
                CaseSla(
                    case=case,
                    policy=policy,
                    first_response_due=due,
                    resolution_due=resolution_due,
                    first_response_breached_at=due if (first is None or first > due) and due < now else None,
                    resolution_breached_at=resolution_due if resolved > resolution_due else None,
                )
            )
        # Surveys after a resolution with an answer: CSAT often, NPS and CES now and then.
        if first:
            csat_weights = PROFILES[kind][4]
            for survey, rate in (("csat", 0.45), ("nps", 0.12), ("ces", 0.12)):
                if rng.random() >= rate:
                    continue
                answered_at = resolved + timedelta(minutes=_minutes(rng, 30))
                if answered_at >= now:
                    continue
                happy = csat_weights[3] + csat_weights[4]  # the same channel is liked on every scale
                if survey == "csat":
                    score = rng.choices((1, 2, 3, 4, 5), csat_weights)[0]
                elif survey == "nps":
                    score = min(10, max(0, round(rng.gauss(4 + happy / 16, 2.2))))
                else:
                    score = min(7, max(1, round(rng.gauss(1.5 + happy / 24, 1.2))))
                dims = {"case": case, "customer_id": identity.customer_id, "channel": channel}
                dims |= {"agent": case.assignee, "team": case.team}
                requests.append(
                    SurveyRequest(
                        **dims,
                        kind=survey,
                        status=SurveyRequest.Status.ANSWERED,
                        created_at=resolved,
                        send_after=resolved,
                        sent_at=resolved + timedelta(seconds=30),
                        case_resolved_at=resolved,
                        case_reopen_count=case.reopen_count,
                    )
                )
                scores.append((dims, survey, score, answered_at))
    Message.objects.bulk_create(messages, batch_size=2000)
    CaseSla.objects.bulk_create(slas, batch_size=2000)
    SurveyRequest.objects.bulk_create(requests, batch_size=2000)
    SurveyAnswer.objects.bulk_create(
        [
            SurveyAnswer(**dims, request=request, kind=survey, score=score, via="message", answered_at=at)
            for request, (dims, survey, score, at) in zip(requests, scores, strict=True)
        ],
        batch_size=2000,
    )
    made["answers"] = len(requests)
    last_at = {}
    for case in cases:
        last_at[case.thread_id] = max(last_at.get(case.thread_id, case.resolved_at), case.resolved_at)
    for thread in threads:
        thread.last_message_at = last_at.get(thread.pk)
    Thread.objects.bulk_update(threads, ["last_message_at"], batch_size=2000)
    return made
