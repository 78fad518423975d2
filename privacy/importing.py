"""Customers from a CSV file: column mapping, dry run, idempotent import (docs/privacy.md).

Each row is one customer: a name, emails, phones, an external id (the other
system's) and attributes. Addresses are normalized exactly as on arrival
(customers.identity), and a row finds its customer by any of its addresses or its
external id: then it is merged into that customer (new addresses added,
attributes set, an empty name filled), otherwise a customer is created. A row
whose addresses belong to two different customers is refused (merging them is a
person's decision), as is a row nobody could find again (no address, no id).
Importing the same file again finds every row's customer and changes nothing.

Rows go in batches: one lookup of the batch's addresses and ids, one transaction
writing the batch (customers, threads and identities in bulk), so 100,000
customers take minutes (bench/import.py).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from customers.identity import email_normalize, phone_normalize
from customers.models import Customer, Identity, IdentityKind

NAME, EMAIL, PHONE, EXTERNAL_ID, IGNORE = "name", "email", "phone", "external_id", "ignore"
ATTRIBUTE = "attribute:"
FIELDS = (NAME, EMAIL, PHONE, EXTERNAL_ID, IGNORE)
# The attribute an imported external id is kept in (and found by on a re-run).
EXTERNAL_ID_ATTRIBUTE = "external_id"
BATCH_SIZE = 1000
# Per-row results kept in a report per action (all refused rows are kept up to the cap).
REPORT_ROWS_MAX = 5000

CREATE, UPDATE, UNCHANGED, REFUSED = "create", "update", "unchanged", "refused"

_GUESSES = {
    NAME: ("name", "full name", "fullname", "nombre", "customer", "contact"),
    EMAIL: ("email", "e-mail", "emails", "mail", "email address", "correo", "correo electrónico"),
    PHONE: (
        "phone",
        "phones",
        "telephone",
        "mobile",
        "phone number",
        "teléfono",
        "telefono",
        "móvil",
        "movil",
    ),
    EXTERNAL_ID: ("id", "external id", "external_id", "customer id", "customer_id", "crm id"),
}
_SPLIT = re.compile(r"[;|,\n]")


def mapping_guess(headers: list[str]) -> dict[str, str]:
    """A first mapping for the mapping step: known header names, anything else an attribute."""
    mapping = {}
    for header in headers:
        key = header.strip().lower()
        guess = next((f for f, names in _GUESSES.items() if key in names), None)
        if guess is None:
            slug = re.sub(r"[^a-z0-9_]+", "_", key).strip("_")
            guess = ATTRIBUTE + slug if slug else IGNORE
        mapping[header] = guess
    return mapping


def mapping_validate(*, headers: list[str], mapping: dict[str, str]) -> dict[str, str]:
    errors = []
    for column, target in mapping.items():
        if column not in headers:
            errors.append(_("Column '%(column)s' is not in the file.") % {"column": column})
        elif target not in FIELDS and not (target.startswith(ATTRIBUTE) and len(target) > len(ATTRIBUTE)):
            errors.append(
                _("Column '%(column)s': '%(target)s' is not a field.") % {"column": column, "target": target}
            )
    targets = list(mapping.values())
    for single in (NAME, EXTERNAL_ID):
        if targets.count(single) > 1:
            errors.append(_("Only one column can be the %(field)s.") % {"field": single})
    if not {EMAIL, PHONE, EXTERNAL_ID} & set(targets):
        errors.append(
            _("Map at least one column to email, phone or external id: nothing else finds a customer again.")
        )
    if errors:
        raise ValidationError(errors)
    return mapping


def csv_read(content: bytes | str) -> tuple[list[str], Iterator[dict]]:
    """Headers and rows of a CSV in UTF-8 (with or without BOM), comma or semicolon separated."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError(_("The file is not UTF-8 text: save it as CSV UTF-8.")) from exc
    sample = content[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(content), dialect=dialect)
    headers = [h for h in (reader.fieldnames or []) if h is not None]
    if not headers:
        raise ValidationError(_("The file has no header row."))
    return headers, reader


@dataclass
class RowResult:
    row: int
    action: str
    customer_id: int | None = None
    reason: str = ""
    # The row number that creates the customer this row joins (dry run: not created yet).
    joins_row: int | None = None


@dataclass
class ImportReport:
    dry_run: bool
    counts: dict = field(default_factory=lambda: {CREATE: 0, UPDATE: 0, UNCHANGED: 0, REFUSED: 0})
    rows: list[RowResult] = field(default_factory=list)
    total: int = 0

    def add(self, result: RowResult) -> None:
        self.counts[result.action] += 1
        self.total += 1
        if self.counts[result.action] <= REPORT_ROWS_MAX:
            self.rows.append(result)

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "total": self.total,
            "counts": self.counts,
            "rows": [r.__dict__ for r in self.rows],
        }


@dataclass
class _Parsed:
    row: int
    name: str = ""
    identities: list[tuple[str, str]] = field(default_factory=list)
    external_id: str = ""
    attributes: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _parse(row_number: int, row: dict, mapping: dict[str, str]) -> _Parsed:
    parsed = _Parsed(row=row_number)
    for column, target in mapping.items():
        value = (row.get(column) or "").strip()
        if not value or target == IGNORE:
            continue
        if target == NAME:
            parsed.name = value[: Customer._meta.get_field("name").max_length]
        elif target == EXTERNAL_ID:
            parsed.external_id = value
        elif target in (EMAIL, PHONE):
            for part in filter(None, (p.strip() for p in _SPLIT.split(value))):
                try:
                    address = email_normalize(part) if target == EMAIL else phone_normalize(part)
                except ValidationError as exc:
                    parsed.errors.append(f"{column}: {' '.join(exc.messages)}")
                    continue
                if len(address) > Identity._meta.get_field("address").max_length:
                    parsed.errors.append(_("%(column)s: the address is too long.") % {"column": column})
                    continue
                key = (IdentityKind.EMAIL if target == EMAIL else IdentityKind.PHONE, address)
                if key not in parsed.identities:
                    parsed.identities.append(key)
        else:
            parsed.attributes[target[len(ATTRIBUTE) :]] = value
    if parsed.external_id:
        parsed.attributes[EXTERNAL_ID_ATTRIBUTE] = parsed.external_id
    if not parsed.errors and not parsed.identities and not parsed.external_id:
        parsed.errors.append(_("No email, phone or external id: nothing would find this customer again."))
    return parsed


class _Plan:
    """Where each address and external id of the file leads: an existing customer or a
    customer a row of the file creates; carried from batch to batch."""

    def __init__(self):
        self.owner: dict[tuple[str, str], tuple] = {}  # (kind, address) -> ("db", pk) | ("row", n)
        self.by_external: dict[str, tuple] = {}
        self.created: dict[int, int] = {}  # row creating a customer -> its pk, once written
        self.pending: dict[int, dict] = {}  # dry run: what a not-yet-created customer would hold
        # Attributes a row of this file set, per customer: a later row of the same file
        # that says otherwise does not overwrite them (first row wins), so a re-run of a
        # file holding one person twice finds nothing to change.
        self.file_values: dict[tuple, dict[str, tuple[str, int]]] = {}
        self.created_rev: dict[int, int] = {}
        self.touched: list[tuple[dict, object]] = []  # keys this batch set, in order

    def canonical(self, owner: tuple) -> tuple:
        if owner[0] == "db" and owner[1] in self.created_rev:
            return ("row", self.created_rev[owner[1]])
        return owner

    def row_values(self, owner: tuple, parsed: _Parsed) -> tuple[dict, list[int]]:
        """The row's attributes this file has not already set otherwise; the rows it yields to."""
        seen = self.file_values.setdefault(self.canonical(owner), {})
        kept, yielded = {}, []
        for key, value in parsed.attributes.items():
            earlier = seen.get(key)
            if earlier is not None and earlier[0] != value:
                yielded.append(earlier[1])
                continue
            seen.setdefault(key, (value, parsed.row))
            kept[key] = value
        return kept, sorted(set(yielded))


def _lookup(batch: list[_Parsed], plan: _Plan) -> dict[int, dict]:
    """Read the batch's addresses and ids in two queries; returns the customers found."""
    addresses = {a for p in batch for _k, a in p.identities}
    kinds = {k for p in batch for k, _a in p.identities}
    # Both lists: the (kind, address) unique index answers it (address alone scans the table).
    found = Identity.objects.filter(kind__in=kinds, address__in=addresses).values_list(
        "kind", "address", "customer_id"
    )
    for kind, address, customer_id in found:
        plan.owner.setdefault((kind, address), ("db", customer_id))
    externals = {p.external_id for p in batch if p.external_id and p.external_id not in plan.by_external}
    if externals:
        rows = Customer.objects.filter(
            **{f"attributes__{EXTERNAL_ID_ATTRIBUTE}__in": list(externals)}
        ).values_list("pk", f"attributes__{EXTERNAL_ID_ATTRIBUTE}")
        for pk, external in rows:
            plan.by_external.setdefault(str(external), ("db", pk))
    ids = {o[1] for p in batch for o in _owners(p, plan) if o[0] == "db"}
    return {c["pk"]: c for c in Customer.objects.filter(pk__in=ids).values("pk", "name", "attributes")}


def _owners(parsed: _Parsed, plan: _Plan) -> set[tuple]:
    owners = {plan.owner[key] for key in parsed.identities if key in plan.owner}
    if parsed.external_id and parsed.external_id in plan.by_external:
        owners.add(plan.by_external[parsed.external_id])
    # A customer created from an earlier row, once written, is a customer of the database.
    return {("db", plan.created[o[1]]) if o[0] == "row" and o[1] in plan.created else o for o in owners}


def _yield_note(rows: list[int]) -> str:
    if not rows:
        return ""
    return _("Values that row %(rows)s of this file already set differently were kept.") % {
        "rows": ", ".join(map(str, rows))
    }


def _describe(owner: tuple) -> str:
    return f"#{owner[1]}" if owner[0] == "db" else _("the customer of row %(row)s") % {"row": owner[1]}


def customers_import(
    *,
    rows: Iterable[dict],
    mapping: dict[str, str],
    dry_run: bool,
    user=None,
    request=None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Plan (dry run) or import the rows; `progress(n)` is called after each batch of n rows."""
    report = ImportReport(dry_run=dry_run)
    plan = _Plan()
    batch: list[_Parsed] = []
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        batch.append(_parse(number, row, mapping))
        if len(batch) >= batch_size:
            _batch_run(batch, plan, report, dry_run=dry_run)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        _batch_run(batch, plan, report, dry_run=dry_run)
        if progress:
            progress(len(batch))
    if not dry_run:
        from audit.models import AuditAction
        from audit.services import audit_record

        audit_record(
            action=AuditAction.CUSTOMERS_IMPORTED,
            actor=user,
            request=request,
            target_type="customer",
            details={"counts": report.counts, "total": report.total},
        )
    return report


def _batch_run(batch: list[_Parsed], plan: _Plan, report: ImportReport, *, dry_run: bool) -> None:
    if dry_run:
        plan.touched = []
        for result in _batch_plan(batch, plan, dry_run=True)[0]:
            report.add(result)
        return
    # A webhook creating one of these addresses at the same moment wins the race; the
    # batch is planned again against what is there now (once: a second loss is a bug).
    for attempt in (1, 2):
        plan.touched = []
        try:
            with transaction.atomic():
                results, writes = _batch_plan(batch, plan, dry_run=False)
                _batch_write(writes, plan)
        except IntegrityError:
            # Only unknown keys were set by this batch: forgetting them undoes its plan.
            for table, key in plan.touched:
                table.pop(key, None)
            for parsed in batch:
                plan.created.pop(parsed.row, None)
            if attempt == 2:
                raise
            continue
        for result in results:
            if result.action == CREATE:
                result.customer_id = plan.created.get(result.row)
            report.add(result)
        return


def _batch_plan(batch: list[_Parsed], plan: _Plan, *, dry_run: bool):
    customers = _lookup(batch, plan)
    results = []
    writes = {"create": [], "update": {}, "identities": []}
    for parsed in batch:
        if parsed.errors:
            results.append(RowResult(parsed.row, REFUSED, reason="; ".join(parsed.errors)))
            continue
        owners = _owners(parsed, plan)
        if len(owners) > 1:
            results.append(
                RowResult(
                    parsed.row,
                    REFUSED,
                    reason=_("Its addresses belong to different customers (%(who)s): merge them first.")
                    % {"who": ", ".join(sorted(_describe(o) for o in owners))},
                )
            )
            continue
        if not owners:
            key = ("row", parsed.row)
            for identity in parsed.identities:
                plan.owner[identity] = key
                plan.touched.append((plan.owner, identity))
            if parsed.external_id:
                plan.by_external[parsed.external_id] = key
                plan.touched.append((plan.by_external, parsed.external_id))
            writes["create"].append(parsed)
            plan.pending[parsed.row] = {"name": parsed.name, "attributes": dict(parsed.attributes)}
            plan.row_values(key, parsed)
            results.append(RowResult(parsed.row, CREATE))
            continue
        [owner] = owners
        new_identities = [i for i in parsed.identities if plan.owner.get(i) is None]
        matched = sorted(
            {kind for kind, address in parsed.identities if (kind, address) not in new_identities}
        )
        if parsed.external_id and plan.by_external.get(parsed.external_id) == owner:
            matched.append("external id")
        for identity in new_identities:
            plan.owner[identity] = owner
            plan.touched.append((plan.owner, identity))
        if parsed.external_id and parsed.external_id not in plan.by_external:
            plan.by_external[parsed.external_id] = owner
            plan.touched.append((plan.by_external, parsed.external_id))
        if owner[0] == "row":
            # Joins a customer an earlier row of this file creates (not written yet: dry
            # run, or the same batch): what it adds goes with that creation.
            state = plan.pending[owner[1]]
            creating = next((p for p in writes["create"] if p.row == owner[1]), None)
            values, yielded = plan.row_values(owner, parsed)
            changed = bool(new_identities) or any(state["attributes"].get(k) != v for k, v in values.items())
            state["attributes"].update(values)
            state["name"] = state["name"] or parsed.name
            if creating is not None:
                creating.identities += new_identities
                creating.attributes = state["attributes"]
                creating.name = state["name"]
            results.append(
                RowResult(
                    parsed.row,
                    UPDATE if changed else UNCHANGED,
                    joins_row=owner[1],
                    reason=_yield_note(yielded),
                )
            )
            continue
        customer = writes["update"].get(owner[1]) or customers[owner[1]]
        values, yielded = plan.row_values(owner, parsed)
        attributes = {**(customer["attributes"] or {}), **values}
        name = customer["name"] or parsed.name
        changed = (
            bool(new_identities) or attributes != (customer["attributes"] or {}) or name != customer["name"]
        )
        if changed:
            writes["update"][owner[1]] = {**customer, "attributes": attributes, "name": name}
            writes["identities"] += [(owner[1], kind, address) for kind, address in new_identities]
        how = " ".join(
            filter(None, [_("matched by %(what)s") % {"what": ", ".join(matched)}, _yield_note(yielded)])
        )
        results.append(
            RowResult(parsed.row, UPDATE if changed else UNCHANGED, customer_id=owner[1], reason=how)
        )
    return results, writes


def _batch_write(writes: dict, plan: _Plan) -> None:
    from conversations import signals
    from conversations.models import Thread
    from customers.services import _customer_data

    created = Customer.objects.bulk_create(
        [Customer(name=p.name, attributes=p.attributes) for p in writes["create"]], batch_size=BATCH_SIZE
    )
    Thread.objects.bulk_create([Thread(customer=c) for c in created], batch_size=BATCH_SIZE)
    identities = []
    for parsed, customer in zip(writes["create"], created, strict=True):
        plan.created[parsed.row] = customer.pk
        plan.created_rev[customer.pk] = parsed.row
        identities += [Identity(customer=customer, kind=k, address=a) for k, a in parsed.identities]
        signals.domain_event_emit(
            "customer.created", {"customer": _customer_data(customer)}, f"customer:{customer.pk}"
        )
    identities += [Identity(customer_id=pk, kind=k, address=a) for pk, k, a in writes["identities"]]
    Identity.objects.bulk_create(identities, batch_size=BATCH_SIZE)
    updates = [
        Customer(pk=pk, name=c["name"], attributes=c["attributes"]) for pk, c in writes["update"].items()
    ]
    Customer.objects.bulk_update(updates, ["name", "attributes"], batch_size=BATCH_SIZE)
    # Addresses now lead to the written customers for the next batches (only this
    # batch's keys can point at its rows: the work stays per batch, not per file).
    for table, key in plan.touched:
        owner = table.get(key)
        if owner is not None and owner[0] == "row" and owner[1] in plan.created:
            table[key] = ("db", plan.created[owner[1]])
