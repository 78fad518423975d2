from celery import shared_task

from automation import services


@shared_task(name="automation.tasks.automation_sweep")
def automation_sweep():
    return services.automation_sweep()
