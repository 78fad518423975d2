"""The demo `make run` starts: seed_demo's history, and replies that really reach "delivered".

The server runs as `make run` does (eager Celery, in-memory channel layer, DEBUG,
the sandbox on), only on the test PostgreSQL database: an agent's reply goes
through the inbox, the real API adapter, the sandbox's signed callback and the
signed status webhook, with no stand-ins in between.
"""

import io
import re
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from channels_adapters.base import Sender
from channels_adapters.models import Channel
from conversations.models import Case, DeliveryAttempt, Message
from conversations.services import receive_inbound
from customers.models import Customer
from kpis.models import KpiDaily, KpiRollupDay, SurveyAnswer
from kpis.selectors import kpi_report
from tests.browser.conftest import asgi_process
from tests.test_production_settings import PRODUCTION, ROOT


@pytest.fixture(scope="module")
def embedded_server(django_db_setup, tmp_path_factory):
    mail = tmp_path_factory.mktemp("sent-mail")
    with asgi_process(
        REDIS_URL=None,
        HELPDESK_SANDBOX="true",
        HELPDESK_SANDBOX_DELIVERED_AFTER_SECONDS="0.3",
        HELPDESK_EMAIL_FILE_PATH=str(mail),
    ) as base:
        yield base, mail


def _agent(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=True, timeout=20)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get("/login/").text).group(1)
    signed_in = client.post(
        "/login/",
        data={"username": username, "password": f"{username}-demo-pass", "csrfmiddlewaretoken": token},
        headers={"Referer": base + "/login/"},
    )
    assert signed_in.url.path == "/inbox/", signed_in.text[:500]
    return client


def _reply(client: httpx.Client, case: Case, body: str) -> Message:
    answer = client.post(
        f"/inbox/case/{case.pk}/reply/",
        data={"mode": "reply", "body": body},
        headers={"X-CSRFToken": client.cookies["csrftoken"], "Referer": str(client.base_url)},
    )
    assert answer.status_code == 200, answer.text[:500]
    return Message.objects.get(body=body)


def _wait_for(message: Message, statuses: set[str], timeout: float = 15) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        message.refresh_from_db()
        if message.status in statuses or time.monotonic() > deadline:
            return message
        time.sleep(0.1)


def _open_case(name: str) -> Case:
    return Case.objects.exclude(status="resolved").get(thread__customer__name=name)


@pytest.fixture
def seeded(embedded_server, settings, transactional_db):
    base, mail = embedded_server
    # The seed runs here and builds the callback URL from the public address, as `make run` does.
    settings.PUBLIC_BASE_URL = base
    call_command("seed_demo", "--days", "2", "--customers", "5", stdout=io.StringIO())
    return base, mail


def test_a_demo_reply_goes_queued_sent_delivered_under_make_runs_settings(seeded):
    base, _ = seeded
    api = Channel.objects.get(kind="api")
    assert api.credentials["callback_url"] == f"{base}/sandbox/api/{api.key}/"
    reply = _reply(_agent(base, "agent1"), _open_case("Dee Novak"), "Yes Dee, I'll update order 771.")

    assert reply.channel == api
    reply = _wait_for(reply, {"delivered", "failed"})
    assert reply.status == "delivered", reply.error
    assert reply.external_id == f"sandbox-{reply.pk}"
    assert reply.sent_at <= reply.delivered_at and reply.error == ""
    assert list(DeliveryAttempt.objects.filter(message=reply).values_list("outcome", flat=True)) == ["sent"]


def test_a_reply_with_fail_in_it_fails_with_a_plain_reason(seeded):
    base, _ = seeded
    reply = _reply(_agent(base, "agent1"), _open_case("Dee Novak"), "This one breaks: #fail")

    reply = _wait_for(reply, {"delivered", "failed"})
    assert reply.status == "failed"
    assert reply.error == (
        "The API callback refused the message (HTTP 400): "
        "The demo sandbox refuses replies containing #fail, as you asked."
    )
    # Only the provoked one: the next reply on the same case goes through.
    again = _wait_for(
        _reply(_agent(base, "agent1"), _open_case("Dee Novak"), "Sorry, retrying."), {"delivered"}
    )
    assert again.status == "delivered"


def test_a_demo_email_reply_is_built_by_the_adapter_and_written_to_a_file(seeded):
    base, mail = seeded
    reply = _reply(_agent(base, "agent1"), _open_case("Customer 0"), "The warranty card is under the manual.")

    reply = _wait_for(reply, {"sent", "failed"})
    assert reply.status == "sent", reply.error
    [written] = [path.read_text() for path in mail.iterdir() if reply.external_id in path.read_text()]
    assert "To: customer0@example.org" in written and "The warranty card is under the manual." in written


@pytest.mark.parametrize(
    "customer, kind, reached",
    [
        # WhatsApp and SMS report delivery (a signed Graph status webhook, a signed
        # Twilio StatusCallback); Telegram's Bot API has no receipts: "sent" is all.
        ("Ana Silva", "whatsapp", "delivered"),
        ("Bo Chen", "sms", "delivered"),  # Billing's case: agent2 is on that team
        ("Cy Okafor", "telegram", "sent"),
    ],
)
def test_demo_replies_reach_the_customer_on_every_messaging_channel(seeded, customer, kind, reached):
    base, _ = seeded
    channel = Channel.objects.get(kind=kind)
    case = _open_case(customer)
    reply = _reply(_agent(base, "agent2"), case, f"Hello {customer}, on {kind}.")

    assert reply.channel == channel
    reply = _wait_for(reply, {reached, "failed"} if reached == "delivered" else {"sent", "failed"})
    assert reply.status == reached, reply.error
    if reached == "delivered":
        # The status came back through the channel's own signed webhook, and matched the send
        # (Meta's and Twilio's status times are whole seconds).
        assert reply.sent_at.replace(microsecond=0) <= reply.delivered_at
        assert reply.external_id.startswith({"whatsapp": "wamid.sandbox-", "sms": "SM"}[kind])
    case.refresh_from_db()
    # A response, counted once the provider took it (its clock: whole seconds).
    assert abs(case.first_response_at - reply.sent_at) < timedelta(seconds=1)


def test_a_demo_messenger_reply_is_delivered(seeded):
    base, _ = seeded
    facebook = Channel.objects.get(kind="facebook")
    case = receive_inbound(
        channel=facebook,
        sender=Sender("facebook", "psid-demo-test", "Flo Park"),
        external_id="m_demo_test_1",
        text="Is the blue kettle back in stock?",
    ).message.case
    reply = _wait_for(_reply(_agent(base, "agent2"), case, "Yes Flo, since Monday."), {"delivered", "failed"})
    assert reply.channel == facebook and reply.status == "delivered", reply.error
    assert reply.external_id.startswith("m_sandbox-")


@pytest.mark.parametrize(
    "customer, reason",
    [
        ("Ana Silva", "131026"),
        ("Bo Chen", "21610"),
        ("Cy Okafor", "blocked"),
    ],
)
def test_fail_on_a_messaging_channel_shows_the_providers_refusal(seeded, customer, reason):
    base, _ = seeded
    reply = _reply(_agent(base, "agent2"), _open_case(customer), f"{customer}: #fail")

    reply = _wait_for(reply, {"delivered", "failed"})
    assert reply.status == "failed"
    assert reason in reply.error or reason in reply.error.lower(), reply.error


def test_the_stand_in_providers_refuse_what_the_real_ones_would(seeded):
    base, _ = seeded
    whatsapp = Channel.objects.get(kind="whatsapp")
    number = whatsapp.credentials["phone_number_id"]
    wrong_token = httpx.post(
        f"{base}/sandbox/graph/v23.0/{number}/messages",
        json={"to": "1", "type": "text", "text": {"body": "hi"}},
        headers={"Authorization": "Bearer someone-elses-token"},
    )
    assert wrong_token.status_code == 401 and wrong_token.json()["error"]["code"] == 190
    wrong_bot = httpx.post(f"{base}/sandbox/telegram/botnot-ours/sendMessage", data={"chat_id": "1"})
    assert wrong_bot.status_code == 401


def test_the_sandbox_refuses_a_callback_it_cannot_verify(seeded):
    base, _ = seeded
    api = Channel.objects.get(kind="api")
    forged = httpx.post(
        api.credentials["callback_url"],
        content=b'{"id": 1, "text": "hi"}',
        headers={"X-Signature": "sha256=" + "0" * 64},
    )
    assert forged.status_code == 403


@pytest.mark.django_db
def test_seed_demo_builds_the_history_it_reports_and_refuses_a_second_run():
    out = io.StringIO()
    call_command("seed_demo", "--days", "10", "--customers", "30", stdout=out)
    report = re.search(
        r"(\d+) generated customers, (\d+) cases, (\d+) calls and (\d+) survey answers over 10 days; "
        r"(\d+) KPI rollup rows",
        out.getvalue(),
    )
    assert report, out.getvalue()
    customers, cases, calls, answers, rows = map(int, report.groups())
    named = {"Ana Silva", "Bo Chen", "Cy Okafor", "Dee Novak", *(f"Customer {n}" for n in range(6))}
    assert customers == 30
    assert Customer.objects.count() == 30 + len(named)
    assert set(Customer.objects.filter(name__in=named).values_list("name", flat=True)) == named
    now = timezone.now()
    history = Case.objects.exclude(thread__customer__name__in=named)
    assert history.count() == cases >= 30
    assert set(history.values_list("status", flat=True)) == {"resolved"}
    assert not history.filter(opened_at__lt=now - timedelta(days=10, minutes=1)).exists()
    kinds = set(history.values_list("origin_channel__kind", flat=True))
    assert kinds == {"email", "whatsapp", "webchat", "voice", "facebook", "sms", "api", "telegram"}
    assert Message.objects.filter(kind="call").count() == calls + 1  # and Ana's call
    assert SurveyAnswer.objects.count() == answers > 0
    assert history.filter(sla__isnull=False).count() > cases / 2

    # The dashboard reads past days from the rollups: they exist, and agree with the live figures.
    today = timezone.localdate(now)
    assert KpiDaily.objects.count() == rows > 0
    assert KpiRollupDay.objects.filter(day__gte=today - timedelta(days=10), day__lt=today).count() == 10
    rolled = kpi_report(start=today - timedelta(days=10), end=today, breakdowns=False)["totals"]
    live = kpi_report(start=today - timedelta(days=10), end=today, breakdowns=False, use_rollups=False)
    assert rolled == pytest.approx(live["totals"])
    assert rolled["volume"] > 0 and rolled["csat"] is not None

    again = io.StringIO()
    call_command("seed_demo", "--days", "10", "--customers", "30", stdout=again)
    assert "Demo data already present" in again.getvalue() and "delete db.sqlite3" in again.getvalue()
    assert Customer.objects.count() == 30 + len(named)


def test_production_does_not_mount_the_sandbox():
    script = (
        "import django; django.setup()\n"
        "from django.urls import Resolver404, resolve\n"
        "try:\n    resolve('/sandbox/api/x/'); print('mounted')\n"
        "except Resolver404:\n    print('absent')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "helpdesk.settings", **PRODUCTION}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "absent", result.stderr


def test_only_the_demo_credential_with_the_sandbox_on_reaches_the_stand_ins(settings):
    from channels_adapters.base import provider_base_url

    settings.PUBLIC_BASE_URL = "http://demo.test"
    real = "https://graph.facebook.com"
    settings.HELPDESK_SANDBOX = True
    assert provider_base_url(real, credential="sandbox", provider="graph") == "http://demo.test/sandbox/graph"
    # A real channel in a DEBUG demo still talks to the real provider.
    assert provider_base_url(real, credential="EAAG-real-token", provider="graph") == real
    settings.HELPDESK_SANDBOX = False
    assert provider_base_url(real, credential="sandbox", provider="graph") == real
