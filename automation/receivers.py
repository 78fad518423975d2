"""The automation app listens to the core's hooks; a failure here never fails the core's write."""

import logging

from django.db.models.signals import post_delete, post_save

from automation import services
from automation.models import OutOfHoursReply, Rule
from conversations.signals import case_changed, message_created, sla_event, survey_answered
from kpis.models import BusinessHours

logger = logging.getLogger(__name__)


def on_case_changed(sender, case, change, message=None, **kwargs):
    try:
        services.case_change_handle(case=case, change=change, message=message)
    except Exception:  # noqa: BLE001 - automation must not break the inbox
        logger.exception("automation: could not handle %s of case %s", change, case.pk)


def on_message_created(sender, message, **kwargs):
    try:
        services.message_handle(message=message)
    except Exception:  # noqa: BLE001
        logger.exception("automation: could not handle message %s", message.pk)


def on_sla_event(sender, case, event, target, **kwargs):
    try:
        services.sla_handle(case=case, event=event, target=target)
    except Exception:  # noqa: BLE001
        logger.exception("automation: could not handle %s of case %s", event, case.pk)


def on_survey_answered(sender, answer, **kwargs):
    try:
        services.survey_handle(answer=answer)
    except Exception:  # noqa: BLE001
        logger.exception("automation: could not handle survey answer %s", answer.pk)


def on_rule_changed(sender, **kwargs):
    from automation.out_of_hours import replies_cache
    from automation.rules.conditions import hours_cache
    from automation.rules.engine import rules_cache

    rules_cache.clear()
    hours_cache.clear()
    replies_cache.clear()


def connect():
    case_changed.connect(on_case_changed, dispatch_uid="automation.case_changed")
    message_created.connect(on_message_created, dispatch_uid="automation.message_created")
    sla_event.connect(on_sla_event, dispatch_uid="automation.sla_event")
    survey_answered.connect(on_survey_answered, dispatch_uid="automation.survey_answered")
    post_save.connect(on_rule_changed, sender=Rule, dispatch_uid="automation.rule_saved")
    post_delete.connect(on_rule_changed, sender=Rule, dispatch_uid="automation.rule_deleted")
    post_save.connect(on_rule_changed, sender=BusinessHours, dispatch_uid="automation.hours_saved")
    post_save.connect(on_rule_changed, sender=OutOfHoursReply, dispatch_uid="automation.reply_saved")
    post_delete.connect(on_rule_changed, sender=OutOfHoursReply, dispatch_uid="automation.reply_deleted")
    post_delete.connect(on_rule_changed, sender=BusinessHours, dispatch_uid="automation.hours_deleted")
    connect_presence()


def on_agent_presence(sender, user, state, **kwargs):
    from automation import presence

    try:
        {
            "connect": presence.presence_connect,
            "disconnect": presence.presence_disconnect,
            "heartbeat": presence.presence_heartbeat,
        }[state](user_id=user.pk)
    except Exception:  # noqa: BLE001
        logger.exception("automation: could not record %s of agent %s", state, user.pk)


def connect_presence():
    from conversations.signals import agent_presence_changed

    agent_presence_changed.connect(on_agent_presence, dispatch_uid="automation.agent_presence")
