"""What a rule or macro does to a case, each action through the core's own services.

Each action returns the sentence the thread's system event shows after the
rule's or macro's name ("Rule 'VIP to Tier 2': assigned to team Tier 2").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import cases as case_services
from conversations import realtime, signals
from conversations import services as core
from conversations.models import CannedResponse, Case, CaseStatus, Label, Priority, Team


@dataclass
class ActionContext:
    case: Case
    source: str  # "Rule 'X'" or "Macro 'Y'": who the timeline names
    actor: object | None = None  # the agent applying a macro; None for a rule
    now: datetime = field(default_factory=timezone.now)


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def _assign_team(ctx: ActionContext, action: dict) -> str:
    team = Team.objects.get(pk=action["team"])
    keep = (
        ctx.case.assignee
        if ctx.case.assignee_id and team.members.filter(pk=ctx.case.assignee_id).exists()
        else None
    )
    ctx.case = case_services.assign_case(case=ctx.case, assignee=keep, team=team, by=ctx.actor)
    return _("assigned to team %(team)s") % {"team": team.name}


def _assign_agent(ctx: ActionContext, action: dict) -> str:
    agent = get_user_model().objects.get(pk=action["agent"])
    ctx.case = case_services.assign_case(case=ctx.case, assignee=agent, by=ctx.actor)
    return _("assigned to %(agent)s") % {"agent": _name(agent)}


def _auto_assign(ctx: ActionContext, action: dict) -> str:
    from automation.assignment import case_auto_assign

    agent = case_auto_assign(case_id=ctx.case.pk, now=ctx.now)
    ctx.case = Case.objects.get(pk=ctx.case.pk)
    if agent is None:
        return _("no agent available: waiting in the team's queue")
    return _("auto-assigned to %(agent)s") % {"agent": _name(agent)}


def _labels(ctx: ActionContext, action: dict, *, add: bool) -> str:
    label = Label.objects.get(name=action["label"])
    labels = [x for x in ctx.case.labels.all() if x.pk != label.pk]
    ctx.case = case_services.case_labels_set(
        case=ctx.case, labels=[*labels, label] if add else labels, by=ctx.actor
    )
    return (_("label %(label)s added") if add else _("label %(label)s removed")) % {"label": label.name}


def _priority(ctx: ActionContext, action: dict) -> str:
    ctx.case = case_services.case_priority_set(case=ctx.case, priority=action["priority"], by=ctx.actor)
    return _("priority set to %(priority)s") % {"priority": Priority(action["priority"]).label}


def _reply(ctx: ActionContext, action: dict) -> str:
    canned = CannedResponse.objects.get(shortcut=action["canned"])
    body = case_services.canned_response_render(
        canned=canned, customer=ctx.case.thread.customer, agent=ctx.actor
    )
    if ctx.actor is not None:
        # An agent's macro: their reply, counted as theirs.
        core.send_reply(case=ctx.case, author_user=ctx.actor, body=body)
    else:
        # A rule's reply is the bot's: sent on the normal path, never a first response.
        core.send_automatic(case=ctx.case, body=body)
    return _("sent the canned reply /%(shortcut)s") % {"shortcut": canned.shortcut}


def _note(ctx: ActionContext, action: dict) -> str:
    core.add_note(case=ctx.case, author_user=ctx.actor, body=action["text"])
    return _("added a note")


def _snooze(ctx: ActionContext, action: dict) -> str:
    until = ctx.now + timedelta(minutes=action["minutes"])
    ctx.case = case_services.set_case_status(
        case=ctx.case, status=CaseStatus.SNOOZED, snoozed_until=until, by=ctx.actor
    )
    return _("snoozed for %(minutes)s minutes") % {"minutes": action["minutes"]}


def _status(ctx: ActionContext, status: str) -> str:
    ctx.case = case_services.set_case_status(case=ctx.case, status=status, by=ctx.actor)
    return _("status set to %(status)s") % {"status": CaseStatus(status).label}


def _escalate(ctx: ActionContext, action: dict) -> str:
    case = ctx.case
    data = {"case": case.pk, "team": case.team_id, "assignee": case.assignee_id, "by": ctx.source}
    # No case and no user: the supervisors' group alone (realtime.publish).
    transaction.on_commit(lambda: realtime.publish("automation.escalated", data))
    return _("escalated to the supervisors")


def _survey(ctx: ActionContext, action: dict) -> str:
    from kpis.models import SurveyRequest
    from kpis.services.surveys import _survey_channel
    from kpis.tasks import survey_send

    case = ctx.case
    request = SurveyRequest.objects.create(
        kind=action["kind"],
        case=case,
        customer_id=case.thread.customer_id,
        channel=_survey_channel(case),
        agent_id=case.assignee_id,
        team_id=case.team_id,
        created_at=ctx.now,
        send_after=ctx.now,
    )
    transaction.on_commit(lambda: survey_send.delay(request.pk))
    return _("sent a %(kind)s survey") % {"kind": action["kind"].upper()}


def _webhook(ctx: ActionContext, action: dict) -> str:
    # Through the outbox, like every webhook: signed, retried, in order per case, and only to
    # the subscriptions that chose "automation.rule_webhook" (docs/webhooks.md).
    signals.case_event_emit(
        "automation.rule_webhook", ctx.case, extra={"source": ctx.source, "tag": action.get("tag", "")}
    )
    return _("called the webhook")


ACTIONS = {
    "assign_team": _assign_team,
    "assign_agent": _assign_agent,
    "auto_assign": _auto_assign,
    "add_label": lambda ctx, a: _labels(ctx, a, add=True),
    "remove_label": lambda ctx, a: _labels(ctx, a, add=False),
    "set_priority": _priority,
    "reply": _reply,
    "note": _note,
    "snooze": _snooze,
    "resolve": lambda ctx, a: _status(ctx, CaseStatus.RESOLVED),
    "set_status": lambda ctx, a: _status(ctx, a["status"]),
    "escalate": _escalate,
    "send_survey": _survey,
    "call_webhook": _webhook,
}


def actions_apply(*, ctx: ActionContext, actions: list[dict]) -> list[str]:
    """Run the actions in order; each leaves its line on the thread.

    An action that cannot be done (a reply on a closed WhatsApp window, a label
    deleted since) is written on the thread with its reason, and the next ones
    still run: one stale action does not lose the others.
    """
    done = []
    for action in actions:
        try:
            with transaction.atomic():
                text = ACTIONS[action["type"]](ctx, action)
                core.system_event_add(
                    thread=ctx.case.thread, case=ctx.case, text=f"{ctx.source}: {text}", by=ctx.actor
                )
            done.append(text)
        except (ValidationError, Team.DoesNotExist, Label.DoesNotExist, CannedResponse.DoesNotExist) as exc:
            reason = "; ".join(getattr(exc, "messages", None) or [str(exc)])
            text = _("could not %(action)s: %(reason)s") % {"action": action["type"], "reason": reason}
            core.system_event_add(
                thread=ctx.case.thread, case=ctx.case, text=f"{ctx.source}: {text}", by=ctx.actor
            )
            done.append(text)
    return done


def action_describe(action: dict) -> str:
    """What an action would do, for the preview (reads names, writes nothing)."""
    kind = action.get("type")
    if kind == "assign_team":
        team = Team.objects.filter(pk=action.get("team")).first()
        return _("assign to team %(team)s") % {"team": team.name if team else action.get("team")}
    if kind == "assign_agent":
        agent = get_user_model().objects.filter(pk=action.get("agent")).first()
        return _("assign to %(agent)s") % {"agent": _name(agent) if agent else action.get("agent")}
    details = ", ".join(f"{k}={v}" for k, v in action.items() if k != "type")
    return f"{kind} {details}".strip()
