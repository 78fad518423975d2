import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from audit.models import AuditAction, AuditEntry
from conversations.models import Thread
from customers.models import Customer, Identity
from privacy.importing import csv_read, customers_import, mapping_guess, mapping_validate
from tests.factories import CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db

CSV = b"""Full name;E-mail;Phone;CRM id;Plan;Notes
Dee Novak;Dee@Example.com;(415) 555-0199;crm-1;gold;
Ana Silva;ana@example.com, ana.work@example.com;+34 600 111 222;crm-2;silver;likes email
Bo Stone;bo-at-example.com;;crm-3;;
;;;;;nothing to find them by
Known Person;known@example.com;;crm-4;bronze;
Clash;known@example.com;+14155550199;;;
Dee again;;+1 415 555 0199;;;prefers calls
"""


def _import(content=CSV, *, dry_run, mapping=None):
    headers, rows = csv_read(content)
    mapping = mapping or mapping_guess(headers)
    mapping_validate(headers=headers, mapping=mapping)
    return customers_import(rows=rows, mapping=mapping, dry_run=dry_run, batch_size=3)


def _state():
    return (
        sorted(Customer.objects.values_list("pk", "name", "attributes")),
        sorted(Identity.objects.values_list("customer_id", "kind", "address")),
    )


def test_the_mapping_is_guessed_from_the_headers():
    headers, _ = csv_read(CSV)
    assert mapping_guess(headers) == {
        "Full name": "name",
        "E-mail": "email",
        "Phone": "phone",
        "CRM id": "external_id",
        "Plan": "attribute:plan",
        "Notes": "attribute:notes",
    }
    with pytest.raises(ValidationError, match="at least one column"):
        mapping_validate(headers=headers, mapping={"Full name": "name", "Plan": "attribute:plan"})
    with pytest.raises(ValidationError, match="not a field"):
        mapping_validate(headers=headers, mapping={"E-mail": "emial"})


def test_the_dry_run_reports_every_row_and_writes_nothing():
    known = IdentityFactory(address="known@example.com", customer=CustomerFactory(name="")).customer
    before = _state()

    report = _import(dry_run=True)

    assert _state() == before
    by_row = {r.row: r for r in report.rows}
    assert [by_row[n].action for n in range(2, 9)] == [
        "create",
        "create",
        "refused",
        "refused",
        "update",
        "refused",
        "update",
    ]
    assert "bo-at-example.com" in by_row[4].reason and "not an email address" in by_row[4].reason
    assert "nothing would find this customer again" in by_row[5].reason
    assert by_row[6].customer_id == known.pk and by_row[6].reason == "matched by email"
    # Its email is the known customer's, its phone Dee's (created by row 2): two customers.
    assert f"#{known.pk}" in by_row[7].reason and "row 2" in by_row[7].reason
    # The same phone written another way is Dee, created by row 2.
    assert by_row[8].joins_row == 2
    assert report.counts == {"create": 2, "update": 2, "unchanged": 0, "refused": 3}


def test_the_import_writes_what_the_dry_run_said_and_a_rerun_changes_nothing():
    known = IdentityFactory(address="known@example.com", customer=CustomerFactory(name="")).customer
    planned = _import(dry_run=True).counts

    report = _import(dry_run=False)

    assert report.counts == planned
    dee = Customer.objects.get(identities__address="+14155550199")
    assert dee.name == "Dee Novak"
    assert dee.attributes == {"plan": "gold", "notes": "prefers calls", "external_id": "crm-1"}
    assert set(dee.identities.values_list("address", flat=True)) == {"dee@example.com", "+14155550199"}
    ana = Customer.objects.get(identities__address="ana.work@example.com")
    assert ana.identities.count() == 3 and ana.attributes["notes"] == "likes email"
    known.refresh_from_db()
    assert known.name == "Known Person" and known.attributes == {"plan": "bronze", "external_id": "crm-4"}
    assert Thread.objects.filter(customer__in=[dee, ana]).count() == 2
    entry = AuditEntry.objects.get(action=AuditAction.CUSTOMERS_IMPORTED)
    assert entry.details["counts"] == planned
    after = _state()

    again = _import(dry_run=False)

    assert _state() == after
    assert again.counts == {"create": 0, "update": 0, "unchanged": 4, "refused": 3}


def test_a_rerun_finds_customers_by_external_id_when_addresses_changed():
    _import(dry_run=False)
    changed = CSV.replace(b"Dee@Example.com", b"dee.new@example.com").replace(b"(415) 555-0199", b"")
    changed = changed.replace(b"Dee again;;+1 415 555 0199;;;prefers calls", b"")
    report = _import(changed, dry_run=False)
    dee = Customer.objects.get(attributes__external_id="crm-1")
    assert set(dee.identities.values_list("address", flat=True)) == {
        "dee@example.com",
        "+14155550199",
        "dee.new@example.com",
    }
    assert report.counts["create"] == 0


def test_the_command_imports_with_a_progress_bar_and_reports_refused_rows(tmp_path, capsys):
    path = tmp_path / "customers.csv"
    path.write_bytes(CSV)
    report = tmp_path / "report.csv"
    call_command("import_customers", str(path), "--dry-run", "--report", str(report))
    out = capsys.readouterr()
    assert "Dry run: would create 3, update 1, leave 0 unchanged, refuse 3 of 7 rows." in out.out
    assert "row 4: refused" in out.out and "row/s" in out.err  # tqdm's bar on stderr
    assert Customer.objects.count() == 0
    assert "refused" in report.read_text()
    call_command("import_customers", str(path), "--map", "Notes=ignore")
    assert Customer.objects.count() == 3
    assert "notes" not in Customer.objects.get(identities__address="ana@example.com").attributes
    with pytest.raises(CommandError, match="not a field"):
        call_command("import_customers", str(path), "--map", "Plan=plan")


def test_one_person_twice_in_a_file_keeps_the_first_rows_values_and_reruns_change_nothing():
    content = b"name,email,phone,plan\nDee,dee@example.com,,gold\nDee N,dee@example.com,+14155550199,silver\n"
    first = _import(content, dry_run=False)
    dee = Customer.objects.get()
    assert dee.attributes == {"plan": "gold"} and dee.identities.count() == 2
    assert "row 2" in first.rows[1].reason
    state = _state()
    again = _import(content, dry_run=False)
    assert _state() == state and again.counts["unchanged"] == 2
