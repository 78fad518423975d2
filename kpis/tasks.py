from celery import shared_task

from kpis import services


@shared_task(ignore_result=True)
def kpi_rollup():
    return services.kpi_rollup_recent()


@shared_task(ignore_result=True)
def sla_check():
    return services.sla_check()


@shared_task(ignore_result=True)
def survey_send(request_id: int):
    services.survey_request_send(request_id=request_id)


@shared_task(ignore_result=True)
def surveys_send_due():
    return services.surveys_send_due()


@shared_task(ignore_result=True)
def survey_campaigns_run():
    return services.survey_campaigns_run_due()
