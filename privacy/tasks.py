from celery import shared_task

from privacy import import_jobs


@shared_task(bind=True, max_retries=3, acks_late=True, ignore_result=True)
def customer_import_run(self, job_id: int):
    try:
        import_jobs.customer_import_execute(job_id=job_id)
    except Exception as exc:
        # Safe to run again: rows already imported are found and left unchanged.
        if self.request.is_eager:
            return
        raise self.retry(exc=exc, countdown=30 * 2**self.request.retries) from exc


@shared_task(ignore_result=True)
def retention_run():
    from privacy.retention import retention_run as run

    run()
