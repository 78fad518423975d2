"""Demo data for the embedded run: people, channels and customers with history.

The named customers (Ana Silva, Bo Chen, Cy Okafor, Dee Novak...) tell the
product's story; behind them `--customers` generated customers bring `--days`
of resolved cases on every channel, with calls, SLAs and survey answers, so the
dashboard has something to show at first sight. Deterministic (a fixed random
seed, times relative to now) and bulk-inserted, so `make run` stays quick.

Safe to run twice: a second run finds the demo admin and stops; to seed again,
start from an empty database (delete db.sqlite3, or `manage.py flush`).
"""

import random
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from channels_adapters.base import SANDBOX_CREDENTIAL, Sender
from channels_adapters.email.adapter import SANDBOX_SMTP_HOST
from channels_adapters.models import Channel
from commitments.demo import demo_commitments_seed
from conversations.models import (
    Author,
    CannedResponse,
    Case,
    CaseStatus,
    DeliveryStatus,
    Direction,
    Label,
    Message,
    MessageKind,
    Priority,
    Team,
)
from conversations.services import receive_inbound
from customers.demo import SEED, SLA_TARGETS, generate_history
from customers.services import identity_add, identity_resolve
from helpdesk import roles
from knowledge.demo import demo_articles_seed
from kpis.models import SlaPolicy
from kpis.services import kpi_rollup_days

PEOPLE = [
    # username, first, last, role, password
    ("admin", "Ada", "Admin", roles.ADMINS, "admin-demo-pass"),
    ("supervisor", "Sam", "Supervisor", roles.SUPERVISORS, "supervisor-demo-pass"),
    ("agent1", "Alex", "Agent", roles.AGENTS, "agent1-demo-pass"),
    ("agent2", "Blair", "Agent", roles.AGENTS, "agent2-demo-pass"),
]

WEBCHAT_DEMO_KEY = "demo-website-chat"
CHANNELS = [
    # kind, name, credentials, monthly cost: what a small shop might pay for each.
    ("api", "Shop backend (API)", {"secret": "demo-api-secret", "callback_url": "http://127.0.0.1:9/"}, 0),
    ("email", "support@demo.example", {"address": "support@demo.example"}, 30),
    ("whatsapp", "WhatsApp +1 555 0100", {"phone_number_id": "100", "verify_token": "demo"}, 120),
    ("facebook", "Facebook page", {"page_id": "200", "verify_token": "demo"}, 40),
    ("sms", "SMS +1 555 0101", {"phone_number": "+15555550101"}, 90),
    ("voice", "Phone line +1 555 0102", {"phone_number": "+15555550102"}, 250),
    ("telegram", "Telegram @demo_help_bot", {"secret_token": "demo"}, 60),
]


# With the sandbox on, the real clients of these channels reach the app's own
# stand-in providers (helpdesk/sandbox.py): "sandbox" is the switch, the secrets
# sign the status webhooks the sandbox posts back, exactly as the providers do.
SANDBOX_CREDENTIALS = {
    "whatsapp": {"access_token": SANDBOX_CREDENTIAL, "app_secret": "demo-app-secret"},
    "facebook": {"page_access_token": SANDBOX_CREDENTIAL, "app_secret": "demo-app-secret"},
    "sms": {"account_sid": SANDBOX_CREDENTIAL, "auth_token": "demo-auth-token"},
    "telegram": {"bot_token": SANDBOX_CREDENTIAL},
}


# Canned answers agents insert with "/shortcut" + Tab.
CANNED = [
    (
        "hello",
        "Greeting",
        "Hi {{customer.first_name}}, thanks for reaching out! "
        "I'm {{agent.first_name}} and I'll help you today.",
        None,
    ),
    (
        "tracking",
        "Where is my order",
        "Hi {{customer.first_name}}, your parcel is on its way; you can follow it with the tracking link "
        "in your confirmation email. I'll keep an eye on it for you.",
        None,
    ),
    (
        "refund",
        "Refund issued",
        "Hi {{customer.first_name}}, I've issued your refund: it reaches your account within 5 working days.",
        "Billing",
    ),
    ("bye", "Closing", "Glad I could help, {{customer.first_name}}. Have a great day!", None),
]


class Command(BaseCommand):
    help = "Create demo agents, channels and customers with history on several channels."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=90, help="Days of generated history behind today (default 90)."
        )
        parser.add_argument(
            "--customers",
            type=int,
            default=300,
            help="Generated customers besides the named ones, spread over every channel (default 300).",
        )

    def handle(self, *args, **options):
        days, customers = options["days"], options["customers"]
        if days < 0 or customers < 0:
            raise CommandError("--days and --customers cannot be negative.")
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            self.stdout.write(
                "Demo data already present (user 'admin' exists); nothing to do. To seed again, "
                "start from an empty database (delete db.sqlite3, or run `manage.py flush`)."
            )
            self._print_logins()
            return
        started = time.monotonic()
        now = timezone.now()
        with transaction.atomic():
            users = self._people(User)
            channels = self._channels()
            self._sla_policies(channels)
            made = generate_history(
                channels=channels,
                users=users,
                days=days,
                customers=customers,
                now=now,
                rng=random.Random(SEED),
            )
            self._customers(users, channels)
            demo_commitments_seed(users=users)  # commitments/demo.py
            demo_articles_seed(channels=[channels["webchat"]])  # help center, and the bot on the web chat
        # The dashboard reads past days from the rollups (today stays live): build them now
        # rather than waiting for the hourly beat task, which `make run` does not even start.
        today = timezone.localdate(now)
        rollup_rows = kpi_rollup_days(start=today - timedelta(days=days + 1), end=today, now=now)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data created in {time.monotonic() - started:.1f} s: {made['customers']} generated "
                f"customers, {made['cases']} cases, {made['calls']} calls and {made['answers']} survey "
                f"answers over {days} days; {rollup_rows} KPI rollup rows."
            )
        )
        self._print_logins()

    def _print_logins(self):
        self.stdout.write("Demo logins (change them before any real use):")
        for username, _, _, role, password in PEOPLE:
            self.stdout.write(f"  {username:<11} {password:<22} ({role})")

    def _people(self, User):
        users = {}
        for username, first, last, role, password in PEOPLE:
            user = User.objects.create_user(
                username,
                email=f"{username}@demo.example",
                password=password,
                first_name=first,
                last_name=last,
                is_staff=role == roles.ADMINS,
                is_superuser=role == roles.ADMINS,
            )
            user.groups.add(Group.objects.get_or_create(name=role)[0])
            users[username] = user
        support = Team.objects.create(name="Support")
        billing = Team.objects.create(name="Billing")
        support.members.add(users["agent1"], users["agent2"], users["supervisor"])
        billing.members.add(users["agent2"])
        for name, color in [("refund", "#dc2626"), ("delivery", "#2563eb"), ("vip", "#ca8a04")]:
            Label.objects.create(name=name, color=color)
        for shortcut, title, body, team in CANNED:
            CannedResponse.objects.create(
                shortcut=shortcut, title=title, body=body, team=billing if team == "Billing" else None
            )
        return users

    def _channels(self):
        channels = {
            kind: Channel.objects.create(kind=kind, name=name, credentials=creds, monthly_cost=cost)
            for kind, name, creds, cost in CHANNELS
        }
        # Providers that bill per message (the channel scorecard adds it to the monthly cost).
        for kind, price in (("whatsapp", 0.03), ("sms", 0.04)):
            channels[kind].settings = {**channels[kind].settings, "cost_per_message": price}
            channels[kind].save(update_fields=["settings"])
        if settings.HELPDESK_SANDBOX:
            # Replies go through the real adapters to the app's own stand-in
            # provider (helpdesk/sandbox.py), so the demo shows them delivered.
            from helpdesk.sandbox import sandbox_callback_url

            api = channels["api"]
            api.credentials = {**api.credentials, "callback_url": sandbox_callback_url(api)}
            api.save(update_fields=["credentials"])
            email = channels["email"]
            email.credentials = {**email.credentials, "smtp_host": SANDBOX_SMTP_HOST}
            email.save(update_fields=["credentials"])
            for kind, creds in SANDBOX_CREDENTIALS.items():
                channels[kind].credentials = {**channels[kind].credentials, **creds}
                channels[kind].save(update_fields=["credentials"])
        # The chat bubble, embedded by static/webchat/demo.html (a fixed key for that page).
        site = settings.PUBLIC_BASE_URL
        channels["webchat"] = Channel.objects.create(
            kind="webchat",
            key=WEBCHAT_DEMO_KEY,
            name="Website chat",
            credentials={"identity_secret": "demo-identity-secret"},
            settings={
                "allowed_origins": sorted({site, "http://localhost:8000", "http://127.0.0.1:8000"}),
                "greeting": {"es": "¡Hola! ¿En qué podemos ayudarte?", "en": "Hi! How can we help you?"},
                "prechat": {"name": "optional", "email": "optional", "phone": "off"},
                "survey": {"csat": {"enabled": True}},
            },
        )
        return channels

    def _sla_policies(self, channels):
        # Round the clock (the demo has no business hours): targets a shop might set per channel.
        SlaPolicy.objects.create(
            name="Any channel",
            first_response_minutes=240,
            resolution_minutes=3 * 24 * 60,
            business_hours_only=False,
        )
        for kind, (first, resolution) in SLA_TARGETS.items():
            SlaPolicy.objects.create(
                name=f"{channels[kind].name}",
                channel=channels[kind],
                first_response_minutes=first,
                resolution_minutes=resolution,
                business_hours_only=False,
            )

    def _history(self, *, identity, channel, opened, lines, agent, resolved=True, reopen=0):
        """A past case with exact timestamps: what a few weeks of use leave behind."""
        thread = identity.customer.thread
        case = Case.objects.create(
            thread=thread,
            origin_channel=channel,
            opened_at=opened,
            status=CaseStatus.RESOLVED if resolved else CaseStatus.OPEN,
            assignee=agent,
            subject=lines[0][1][:300],
            reopen_count=reopen,
        )
        at = opened
        first_response = None
        for who, text, after in lines:
            at = at + timedelta(minutes=after)
            inbound = who == "customer"
            Message.objects.create(
                thread=thread,
                case=case,
                channel=channel,
                identity=identity,
                direction=Direction.IN if inbound else Direction.OUT,
                author=Author.CUSTOMER if inbound else Author.AGENT,
                author_user=None if inbound else agent,
                body=text,
                status=None if inbound else DeliveryStatus.READ,
                sent_at=None if inbound else at,
                created_at=at,
            )
            if not inbound and first_response is None:
                first_response = at
        case.first_response_at = first_response
        case.resolved_at = at + timedelta(minutes=5) if resolved else None
        case.last_message_at = at
        case.save()
        thread.last_message_at = at
        thread.save(update_fields=["last_message_at"])
        return case

    def _customers(self, users, channels):
        now = timezone.now()
        agent1, agent2 = users["agent1"], users["agent2"]

        # Ana: the story the product exists for. Facebook, then a promise on
        # WhatsApp, then a phone call: one customer, one thread.
        ana_fb = identity_resolve(kind="facebook", address="psid-ana-1001", name="Ana Silva")
        ana = ana_fb.customer
        ana_phone = identity_add(customer=ana, kind="phone", address="+14155550123")
        identity_add(customer=ana, kind="email", address="ana.silva@example.com")
        self._history(
            identity=ana_fb,
            channel=channels["facebook"],
            opened=now - timedelta(days=20),
            agent=agent1,
            lines=[
                ("customer", "Hi, my blender arrived with a cracked jar.", 0),
                ("agent", "Sorry about that, Ana! Could you send a photo?", 12),
                ("customer", "Sent. Order #4411.", 30),
                ("agent", "Thanks. A replacement jar ships today; you'll get it within 5 days.", 8),
            ],
        )
        Message.objects.create(
            thread=ana.thread,
            case=ana.thread.cases.first(),
            channel=channels["voice"],
            identity=ana_phone,
            direction=Direction.IN,
            kind=MessageKind.CALL,
            author=Author.CUSTOMER,
            body="Inbound call, 4 min 12 s",
            meta={"call_status": "completed", "answered": True, "talk_seconds": 252},
            created_at=now - timedelta(days=19),
        )
        receive_inbound(
            channel=channels["whatsapp"],
            sender=Sender("phone", "+14155550123", "Ana Silva"),
            external_id="wamid.demo-ana-1",
            text="The replacement jar never came. You promised 5 days on Facebook!",
        )

        # Bo: email and SMS, one open case waiting for an answer.
        bo = identity_resolve(kind="email", address="bo.chen@example.com", name="Bo Chen")
        identity_add(customer=bo.customer, kind="phone", address="+14155550199")
        self._history(
            identity=bo,
            channel=channels["email"],
            opened=now - timedelta(days=9),
            agent=agent2,
            lines=[
                ("customer", "Invoice 2026-118 charges me twice.", 0),
                ("agent", "You're right, the duplicate is refunded; 3-5 business days.", 95),
            ],
        )
        case = receive_inbound(
            channel=channels["sms"],
            sender=Sender("phone", "+1 415 555 0199"),
            external_id="SMdemo-bo-1",
            text="Refund still not on my card, can you check?",
        ).message.case
        case.labels.add(Label.objects.get(name="refund"))
        case.team = Team.objects.get(name="Billing")
        case.priority = Priority.HIGH
        case.save()

        # Cy: Telegram and the API (the shop's order page), a fresh case.
        receive_inbound(
            channel=channels["telegram"],
            sender=Sender("telegram", "5550001", "Cy Okafor"),
            external_id="5550001:17",
            text="Do you ship to Lagos?",
        )
        receive_inbound(
            channel=channels["api"],
            sender=Sender("email", "dee@example.com", "Dee Novak"),
            external_id="order-page-771",
            text="Can I change the delivery address of order 771?",
        )
        for n in range(6):
            receive_inbound(
                channel=channels["email"],
                sender=Sender("email", f"customer{n}@example.org", f"Customer {n}"),
                external_id=f"<demo-{n}@example.org>",
                text=f"Question {n}: where can I find my warranty card?",
            )
