"""The kpis app listens to the core's hooks; a failure here never fails the core's write."""

import logging

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save, pre_delete

from channels_adapters.models import Channel
from conversations.models import Team
from conversations.signals import case_changed, message_created
from kpis import services
from kpis.models import SlaPolicy

logger = logging.getLogger(__name__)


def on_case_changed(sender, case, change, **kwargs):
    try:
        if change in ("opened", "assigned"):
            services.case_sla_apply(case=case)
        if change == "assigned":
            # A case belongs to its current agent and team, past days included.
            services.kpi_rollups_invalidate_case(case=case)
        elif change == "resolved":
            services.surveys_schedule_for_resolved(case=case)
    except Exception:  # noqa: BLE001 - KPIs must not break the inbox
        logger.exception("kpis: could not handle %s of case %s", change, case.pk)


def on_message_created(sender, message, **kwargs):
    try:
        services.survey_answer_from_message(message=message)
    except Exception:  # noqa: BLE001
        logger.exception("kpis: could not check message %s for a survey answer", message.pk)


def on_policy_changed(sender, **kwargs):
    services.sla_policies_cache.clear()


def on_agent_or_team_deleted(sender, instance, **kwargs):
    # Before the delete: the rollup rows are folded into the unassigned ones, so
    # they do not go with the user or team (CASCADE) while the cases stay.
    if sender is Team:
        services.kpi_rollups_unassign(team_id=instance.pk)
    else:
        services.kpi_rollups_unassign(agent_id=instance.pk)


def on_channel_deleted(sender, instance, **kwargs):
    # The channel's rollup rows go with it (CASCADE) while the per-day totals would keep
    # them: drop the totals, reports sum KpiDaily until the days are rolled up again.
    services.kpi_day_totals_drop()


def connect():
    pre_delete.connect(on_agent_or_team_deleted, sender=get_user_model(), dispatch_uid="kpis.user_deleted")
    pre_delete.connect(on_agent_or_team_deleted, sender=Team, dispatch_uid="kpis.team_deleted")
    pre_delete.connect(on_channel_deleted, sender=Channel, dispatch_uid="kpis.channel_deleted")
    post_save.connect(on_policy_changed, sender=SlaPolicy, dispatch_uid="kpis.sla_policy_saved")
    post_delete.connect(on_policy_changed, sender=SlaPolicy, dispatch_uid="kpis.sla_policy_deleted")
    case_changed.connect(on_case_changed, dispatch_uid="kpis.case_changed")
    message_created.connect(on_message_created, dispatch_uid="kpis.message_created")
