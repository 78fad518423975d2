import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

app = Celery("helpdesk")
# Every Celery option lives in Django settings under the CELERY_ prefix, so the
# environment drives the broker exactly like the database.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
