"""Hooks for apps that keep their own personal data about a customer (consents,
campaign recipients, bot transcripts...): they answer these so an export holds
their part and an erasure removes it.

customer_export_sections(customer): return {section name: JSON-able data}.
customer_erasing(customer, thread): sent inside the erasure's transaction; a
  receiver blanks its own rows of that customer. Its error rolls the erasure back.
"""

from django.dispatch import Signal

customer_export_sections = Signal()
customer_erasing = Signal()
