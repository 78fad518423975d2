from celery import shared_task

from outreach import campaigns, services
from outreach.selectors import outreaches_due


@shared_task(acks_late=True, ignore_result=True)
def outreach_advance_task(outreach_id: int):
    return services.outreach_advance(outreach_id=outreach_id)


@shared_task(ignore_result=True)
def outreach_tick():
    """Beat: timeouts, quiet hours ended, and any move a lost task or a dead worker left undone."""
    moved = 0
    for outreach_id in outreaches_due():
        services.outreach_advance(outreach_id=outreach_id)
        moved += 1
    return {"advanced": moved, **campaigns.campaigns_dispatch()}
