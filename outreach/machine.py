"""The moves an outreach and its steps may make, and nothing else.

Every write of a state goes through `step_move` / `outreach_move`: a move not in
the table is a bug (a re-drive acting on a stale read) and raises instead of
quietly sending or skipping a step. Callers hold the outreach's row lock.
"""

from __future__ import annotations

from django.utils import timezone

from outreach.models import Outreach, OutreachStatus, OutreachStep, StepState


class IllegalMove(Exception):
    pass


STEP_MOVES = {
    StepState.PENDING: {StepState.WAITING, StepState.SKIPPED, StepState.CANCELLED},
    StepState.WAITING: {StepState.SUCCEEDED, StepState.FELL_BACK, StepState.CANCELLED},
    StepState.SUCCEEDED: set(),
    StepState.FELL_BACK: set(),
    StepState.SKIPPED: set(),
    StepState.CANCELLED: set(),
}

OUTREACH_MOVES = {
    OutreachStatus.PLANNED: {OutreachStatus.RUNNING, OutreachStatus.CANCELLED, OutreachStatus.REPLIED},
    OutreachStatus.RUNNING: {
        OutreachStatus.SUCCEEDED,
        OutreachStatus.REPLIED,
        OutreachStatus.EXHAUSTED,
        OutreachStatus.CANCELLED,
    },
    OutreachStatus.SUCCEEDED: set(),
    OutreachStatus.REPLIED: set(),
    OutreachStatus.EXHAUSTED: set(),
    OutreachStatus.CANCELLED: set(),
}

STEP_OPEN = (StepState.PENDING, StepState.WAITING)


def step_move(step: OutreachStep, to: str, *, reason: str = "", **fields) -> None:
    if to not in STEP_MOVES[step.state]:
        raise IllegalMove(f"Step {step.number} of outreach #{step.outreach_id}: {step.state} -> {to}")
    now = timezone.now()
    step.state = to
    if reason:
        step.reason = reason[:2000]
    if not STEP_MOVES[to]:
        step.finished_at = now
    for name, value in fields.items():
        setattr(step, name, value)
    step.save()


def outreach_move(outreach: Outreach, to: str, *, reason: str = "") -> None:
    if to not in OUTREACH_MOVES[outreach.status]:
        raise IllegalMove(f"Outreach #{outreach.pk}: {outreach.status} -> {to}")
    outreach.status = to
    fields = ["status"]
    if reason:
        outreach.stop_reason = reason[:2000]
        fields.append("stop_reason")
    if not OUTREACH_MOVES[to]:
        outreach.finished_at = timezone.now()
        fields.append("finished_at")
    outreach.save(update_fields=fields)
