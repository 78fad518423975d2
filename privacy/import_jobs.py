"""Admin CSV imports as background jobs: the row exists before the task runs, the task
reports progress on it after every batch, and a retry is safe (the import is idempotent)."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from privacy.importing import csv_read, customers_import, mapping_guess, mapping_validate
from privacy.models import CustomerImport

logger = logging.getLogger(__name__)


def customer_import_create(*, content: bytes, name: str, user=None) -> CustomerImport:
    headers, rows = csv_read(content)
    total = sum(1 for _ in rows)
    job = CustomerImport(
        original_name=name[:255],
        headers=headers,
        mapping=mapping_guess(headers),
        total_rows=total,
        created_by=user,
    )
    job.file.save(f"{timezone.now():%Y%m%d%H%M%S}.csv", ContentFile(content), save=False)
    job.save()
    return job


def customer_import_start(*, job: CustomerImport, mapping: dict, dry_run: bool) -> CustomerImport:
    """Validate the mapping, then queue the job (a dry run, or the import)."""
    from privacy.tasks import customer_import_run

    if job.status in (CustomerImport.Status.PENDING, CustomerImport.Status.RUNNING):
        raise ValidationError("This import is already running.")
    if not job.file:
        raise ValidationError("This file was imported already; upload it again to import it again.")
    mapping_validate(headers=job.headers, mapping=mapping)
    with transaction.atomic():
        job.mapping = mapping
        job.dry_run = dry_run
        job.status = CustomerImport.Status.PENDING
        job.processed_rows = 0
        job.report = {}
        job.error = ""
        job.save()
        transaction.on_commit(lambda: customer_import_run.delay(job.pk))
    return job


def customer_import_execute(*, job_id: int) -> CustomerImport | None:
    """Run a queued job (the task's body). Returns None when another worker has it."""
    claimed = CustomerImport.objects.filter(
        pk=job_id, status__in=(CustomerImport.Status.PENDING, CustomerImport.Status.FAILED)
    ).update(
        status=CustomerImport.Status.RUNNING,
        started_at=timezone.now(),
        processed_rows=0,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    job = CustomerImport.objects.get(pk=job_id)

    def progress(n):
        CustomerImport.objects.filter(pk=job_id).update(processed_rows=F("processed_rows") + n)

    try:
        with job.file.open("rb") as fh:
            _headers, rows = csv_read(fh.read())
        report = customers_import(
            rows=rows, mapping=job.mapping, dry_run=job.dry_run, user=job.created_by, progress=progress
        )
    except Exception as exc:
        logger.exception("Customer import %s failed", job_id)
        CustomerImport.objects.filter(pk=job_id).update(
            status=CustomerImport.Status.FAILED, error=str(exc)[:5000], finished_at=timezone.now()
        )
        raise
    job.refresh_from_db()
    job.report = report.as_dict()
    job.status = CustomerImport.Status.DONE
    job.finished_at = timezone.now()
    if not job.dry_run:
        # The upload holds personal data; what it did is in the report and the customers.
        job.file.delete(save=False)
        job.file = ""
    job.save()
    return job
