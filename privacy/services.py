"""Writes of the customers directory (edits are audited by audit.receivers, as every
signed-in person's edit is) and the import, export and erasure entry points."""

from __future__ import annotations

from customers.models import Customer
from customers.services import customer_update


def customer_edit(*, customer: Customer, name: str, attributes: dict) -> Customer:
    """The directory's form holds every attribute: a key left out is removed."""
    removed = {key: None for key in (customer.attributes or {}) if key not in attributes}
    return customer_update(customer=customer, name=name, attributes={**removed, **attributes})
