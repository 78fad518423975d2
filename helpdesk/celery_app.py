import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

app = Celery("helpdesk")
# Every Celery option lives in Django settings under the CELERY_ prefix, so the
# environment drives the broker exactly like the database.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_between_tasks(task=None, **kwargs):
    """Between two tasks, what Django does between two requests.

    With CELERY_DB_REUSE_MAX set, Celery's Django fixup keeps connections from one
    task to the next; this closes one that outlived CONN_MAX_AGE or saw an error,
    and arms the health check (CONN_HEALTH_CHECKS) of the next query, so a task
    after a PostgreSQL restart reconnects instead of failing. Not for an eager
    task: it runs inside its caller's transaction.
    """
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
