import json
from datetime import date
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditAction, AuditEntry
from conversations.models import Case, Message, MessageKind
from customers.models import Customer, Identity
from kpis.selectors import kpi_report
from privacy.history_import import conversations_import

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parents[2] / "privacy" / "fixtures"


def _load(name):
    return json.loads((FIXTURES / name).read_text())


def test_zendesk_tickets_land_on_the_customers_threads_marked_imported():
    report = conversations_import(source="zendesk", data=_load("zendesk_tickets.json"))

    assert report["conversations"] == 2 and report["messages"] == 4
    assert report["refused"] == [{"conversation": 35438, "reason": report["refused"][0]["reason"]}]
    assert "no email or phone" in report["refused"][0]["reason"]
    jorge = Customer.objects.get(identities__address="jorge.ruiz@example.es")
    rows = list(
        Message.objects.filter(thread__customer=jorge)
        .order_by("created_at")
        .values_list("direction", "kind", "author", "body")
    )
    assert rows == [
        ("in", "text", "customer", "My printer caught fire after the last update."),
        ("out", "note", "agent", "Escalating to hardware."),
        ("out", "text", "agent", "We are sending a replacement today."),
    ]
    message = Message.objects.filter(thread__customer=jorge).first()
    assert (
        message.meta["imported"]["source"] == "zendesk" and message.meta["imported"]["conversation"] == 35436
    )
    assert message.case_id is None and message.channel_id is None
    marta = Customer.objects.get(identities__address="+34611222333")
    assert marta.name == "Marta Gil"
    assert AuditEntry.objects.get(action=AuditAction.CONVERSATIONS_IMPORTED).details["messages"] == 4


def test_chatwoot_conversations_join_existing_customers_and_a_rerun_adds_nothing():
    conversations_import(source="zendesk", data=_load("zendesk_tickets.json"))
    jorge = Customer.objects.get(identities__address="jorge.ruiz@example.es")

    report = conversations_import(source="chatwoot", data=_load("chatwoot_conversations.json"))

    # Activity lines ("assigned to") are Chatwoot's bookkeeping: skipped.
    assert report["messages"] == 4 and report["refused"] == []
    # Same person, by email: the Chatwoot phone joins the customer Zendesk made.
    assert Identity.objects.get(address="+34600999888").customer_id == jorge.pk
    kinds = list(
        Message.objects.filter(meta__imported__source="chatwoot", thread__customer=jorge)
        .order_by("created_at")
        .values_list("kind", "direction")
    )
    assert kinds == [(MessageKind.TEXT, "in"), (MessageKind.NOTE, "out"), (MessageKind.TEXT, "out")]
    total = Message.objects.count()

    again = conversations_import(source="chatwoot", data=_load("chatwoot_conversations.json"))

    assert Message.objects.count() == total and again["messages"] == 0 and again["already_imported"] == 4


def test_imported_history_stays_out_of_the_live_kpis():
    conversations_import(source="zendesk", data=_load("zendesk_tickets.json"))
    conversations_import(source="chatwoot", data=_load("chatwoot_conversations.json"))
    report = kpi_report(start=date(2024, 1, 1), end=date(2026, 1, 1), use_rollups=False)
    assert report["totals"]["volume"] == 0
    assert not Case.objects.exists()


def test_the_command_reports_and_refuses_a_wrong_file(tmp_path, capsys):
    call_command("import_conversations", str(FIXTURES / "zendesk_tickets.json"), "--source", "zendesk")
    assert "2 conversations, 4 messages imported (0 already there), 1 refused." in capsys.readouterr().out
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"tickets": [{"subject": "no id"}]}')
    with pytest.raises(CommandError, match="not a zendesk export"):
        call_command("import_conversations", str(wrong), "--source", "zendesk")
