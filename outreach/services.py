"""Writes on outreaches: start one, move it on, stop it.

One function moves an outreach: `outreach_advance`. It takes the outreach's row
lock, reads where its steps are, and makes the next move in one transaction.
Sending a step means writing its outbound message (queued) in that
transaction; the send itself is the core's delivery task, queued on commit,
which claims the message once. So:
- a worker killed before the commit leaves the step pending: the next
  advance (the beat tick) claims it, once;
- killed after it, or the broker losing the task: the message is queued and
  the core's re-drive sends it; the step already has its message and is never
  claimed again;
- a re-drive running the same advance twice finds the step waiting.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_adapters.models import Channel
from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations import signals
from conversations.models import (
    Author,
    Case,
    CaseStatus,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Thread,
)
from conversations.services import system_event_add
from outreach import consent, rules, throttle
from outreach.machine import STEP_OPEN, outreach_move, step_move
from outreach.models import (
    Advance,
    Campaign,
    Goal,
    Outreach,
    OutreachStatus,
    OutreachStep,
    Source,
    StepState,
)

logger = logging.getLogger(__name__)

MAX_STEPS = 6
MAX_WAIT_MINUTES = 60 * 24 * 14


def chain_validate(chain) -> list[dict]:
    """[{"channel": <id or Channel>, "advance_on": ..., "wait_minutes": ...}, ...] -> clean steps."""
    if not isinstance(chain, list | tuple) or not chain:
        raise ValidationError({"chain": _("Give at least one channel to try.")})
    if len(chain) > MAX_STEPS:
        raise ValidationError({"chain": _("At most %(n)s channels in a chain.") % {"n": MAX_STEPS}})
    ids = []
    for item in chain:
        channel = item.get("channel") if isinstance(item, dict) else None
        ids.append(channel.pk if isinstance(channel, Channel) else channel)
    if not all(isinstance(i, int) for i in ids):
        raise ValidationError({"chain": _("Each step needs a channel id.")})
    channels = Channel.objects.defer("credentials").in_bulk(ids)
    steps = []
    for number, (item, channel_id) in enumerate(zip(chain, ids, strict=True), start=1):
        channel = channels.get(channel_id)
        if channel is None:
            raise ValidationError(
                {"chain": _("Step %(n)s: no channel %(id)s.") % {"n": number, "id": channel_id}}
            )
        try:
            adapter_for(channel.kind)
        except UnsupportedChannel as exc:
            raise ValidationError({"chain": str(exc)}) from exc
        advance_on = item.get("advance_on", Advance.UNDELIVERED)
        if advance_on not in Advance.values:
            raise ValidationError(
                {
                    "chain": _("Step %(n)s: 'advance_on' is one of %(choices)s.")
                    % {"n": number, "choices": ", ".join(Advance.values)}
                }
            )
        wait = item.get("wait_minutes", 60)
        if not isinstance(wait, int) or isinstance(wait, bool) or not 0 <= wait <= MAX_WAIT_MINUTES:
            raise ValidationError(
                {
                    "chain": _("Step %(n)s: 'wait_minutes' is a whole number from 0 to %(max)s.")
                    % {"n": number, "max": MAX_WAIT_MINUTES}
                }
            )
        steps.append({"number": number, "channel": channel, "advance_on": advance_on, "wait_minutes": wait})
    return steps


def _content_validate(*, body: str, steps: list[dict]) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": _("An outreach needs a text.")})
    for step in steps:
        problem = rules.body_check(channel=step["channel"], body=body)
        if problem:
            raise ValidationError({"body": problem})
    return body


OPTION_KINDS = ("whatsapp",)


def _clean_json(value, depth: int = 0) -> bool:
    """Plain JSON PostgreSQL can store: no NUL characters, not absurdly deep."""
    if depth > 5:
        return False
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return all(_clean_json(k, depth + 1) and _clean_json(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_clean_json(v, depth + 1) for v in value)
    return value is None or isinstance(value, bool | int | float)


def _options_validate(options) -> dict:
    """{"whatsapp": {"template": {...}}}: the WhatsApp template for outside the 24-hour window."""
    if options in (None, {}):
        return {}
    if not isinstance(options, dict) or not _clean_json(options):
        raise ValidationError({"options": _("Options are an object per channel kind.")})
    unknown = set(options) - set(OPTION_KINDS)
    if unknown or not all(isinstance(v, dict) and set(v) <= {"template"} for v in options.values()):
        raise ValidationError(
            {"options": _('Options take a WhatsApp template only: {"whatsapp": {"template": {...}}}.')}
        )
    return options


def _steps_build(outreach: Outreach, steps: list[dict]) -> list[OutreachStep]:
    return [
        OutreachStep(
            outreach=outreach,
            number=s["number"],
            channel=s["channel"],
            advance_on=s["advance_on"],
            wait_minutes=s["wait_minutes"],
        )
        for s in steps
    ]


def outreach_start(
    *,
    customer,
    chain,
    body: str,
    goal: str = Goal.DELIVERED,
    source: str = Source.API,
    subject: str = "",
    options: dict | None = None,
    case: Case | None = None,
    created_by=None,
) -> Outreach:
    """One message to one customer, tried on each channel of the chain until one reaches them."""
    steps = chain_validate(chain)
    body = _content_validate(body=body, steps=steps)
    if goal not in Goal.values:
        raise ValidationError({"goal": _("The goal is 'delivered' or 'read'.")})
    options = _options_validate(options)
    if case is not None and case.thread.customer_id != customer.pk:
        raise ValidationError({"case": _("That case belongs to another customer.")})
    if not any(rules.recipient_for(customer_id=customer.pk, channel=s["channel"]) for s in steps):
        raise ValidationError({"chain": _("The customer has no address on any channel of this chain.")})
    with transaction.atomic():
        outreach = Outreach.objects.create(
            customer=customer,
            case=case,
            source=source,
            created_by=created_by,
            body=body,
            subject=(subject or "")[:200],
            options=options or {},
            goal=goal,
            status=OutreachStatus.RUNNING,
            created_at=timezone.now(),
        )
        OutreachStep.objects.bulk_create(_steps_build(outreach, steps))
        thread = Thread.objects.get(customer_id=customer.pk)
        names = " → ".join(s["channel"].name for s in steps)
        system_event_add(
            thread=thread,
            case=case,
            text=_("Outreach #%(id)s started: %(chain)s.") % {"id": outreach.pk, "chain": names},
            by=created_by,
        )
        transaction.on_commit(lambda: _advance_later(outreach.pk))
    return outreach


def _advance_later(outreach_id: int, eta: datetime | None = None) -> None:
    from django.conf import settings

    from outreach.tasks import outreach_advance_task

    if eta is not None and settings.CELERY_TASK_ALWAYS_EAGER:
        return  # eager (the demo) would run it now, not at eta: the beat tick moves it on then
    try:
        if eta is not None:
            outreach_advance_task.apply_async((outreach_id,), eta=eta)
        else:
            outreach_advance_task.delay(outreach_id)
    except Exception:  # noqa: BLE001 - the broker away: the beat tick moves it on from the rows
        logger.exception("Could not queue the advance of outreach %s", outreach_id)


def _event(outreach: Outreach, text: str) -> None:
    thread = Thread.objects.get(customer_id=outreach.customer_id)
    system_event_add(thread=thread, case=outreach.case, text=text)


def outreach_advance(*, outreach_id: int, now: datetime | None = None) -> str:
    """Make the outreach's next move (see the module docstring); returns what happened."""
    now = now or timezone.now()
    with transaction.atomic():
        outreach = Outreach.objects.select_for_update().filter(pk=outreach_id).first()
        if outreach is None or outreach.status != OutreachStatus.RUNNING:
            return "finished"
        steps = list(
            OutreachStep.objects.select_for_update(of=("self",))
            .select_related("channel", "message")
            .filter(outreach=outreach)
            .order_by("number")
        )
        for step in steps:
            if step.state not in STEP_OPEN:
                continue
            if step.state == StepState.WAITING:
                verdict, reason = _watch(outreach, step, now)
                if verdict == "wait":
                    return "waiting"
                if verdict == "reached":
                    step_move(step, StepState.SUCCEEDED, reason=reason)
                    _rest_cancel(steps, after=step.number)
                    outreach_move(outreach, OutreachStatus.SUCCEEDED, reason=reason)
                    _event(
                        outreach,
                        _("Outreach #%(id)s reached the customer on %(channel)s (%(reason)s).")
                        % {"id": outreach.pk, "channel": step.channel.name, "reason": reason},
                    )
                    return "succeeded"
                step_move(step, StepState.FELL_BACK, reason=reason)
                _event(
                    outreach,
                    _("Outreach #%(id)s: %(channel)s did not reach the customer (%(reason)s).")
                    % {"id": outreach.pk, "channel": step.channel.name, "reason": reason},
                )
                continue
            outcome = _claim(outreach, step, now)
            if outcome in ("claimed", "delayed"):
                return outcome
        reason = _("no channel of the chain reached the customer")
        outreach_move(outreach, OutreachStatus.EXHAUSTED, reason=reason)
        _event(outreach, _("Outreach #%(id)s ended: %(reason)s.") % {"id": outreach.pk, "reason": reason})
        return "exhausted"


def _rest_cancel(steps: list[OutreachStep], *, after: int = 0) -> None:
    for other in steps:
        if other.number > after and other.state == StepState.PENDING:
            step_move(other, StepState.CANCELLED)


def _watch(outreach: Outreach, step: OutreachStep, now: datetime) -> tuple[str, str]:
    """A sent step: reached (its goal), fall back (failed or timed out) or wait."""
    message = step.message
    if message is None:
        return "fall_back", _("its message was deleted")
    status = message.status
    if status == DeliveryStatus.READ or (
        status == DeliveryStatus.DELIVERED and outreach.goal == Goal.DELIVERED
    ):
        return "reached", _("read") if status == DeliveryStatus.READ else _("delivered")
    if status == DeliveryStatus.FAILED:
        return "fall_back", message.error or _("failed")
    if step.advance_on == Advance.FAILED or step.deadline_at is None or now < step.deadline_at:
        return "wait", ""
    if step.advance_on == Advance.UNDELIVERED:
        if status == DeliveryStatus.DELIVERED:
            # Delivered, not read, and the step moves on only when undelivered: the
            # customer has it; another channel would say the same thing twice.
            return "reached", _("delivered, not read")
        return "fall_back", _("not delivered within %(n)s minutes") % {"n": step.wait_minutes}
    return "fall_back", _("not read within %(n)s minutes") % {"n": step.wait_minutes}


def _skip(step: OutreachStep, reason: str) -> str:
    step_move(step, StepState.SKIPPED, reason=reason)
    return "skipped"


def _claim(outreach: Outreach, step: OutreachStep, now: datetime) -> str:
    """A pending step: skip it, put it off, or write its message and queue the send."""
    if step.due_at is not None and step.due_at > now:
        return "delayed"
    if outreach.campaign_id is not None and outreach.campaign.status == Campaign.Status.PAUSED:
        return "delayed"  # resumed, the beat tick picks it up where it stopped
    channel = step.channel
    if not channel.is_active:
        return _skip(step, _("the channel is switched off"))
    if consent.opted_out(customer_id=outreach.customer_id, channel_kind=channel.kind):
        return _skip(step, _("the customer opted out of this channel"))
    recipient = rules.recipient_for(customer_id=outreach.customer_id, channel=channel)
    if recipient is None:
        return _skip(step, _("the customer has no address on this channel"))
    thread = Thread.objects.select_related("customer").get(customer_id=outreach.customer_id)
    meta, refusal = rules.outbound_meta(
        outreach=outreach, channel=channel, thread=thread, recipient=recipient
    )
    if meta is None:
        return _skip(step, refusal)
    quiet_end = rules.quiet_until(
        now=now, zone=rules.customer_zone(customer=thread.customer, channel=channel)
    )
    if quiet_end is not None:
        step.due_at = quiet_end
        step.reason = _("quiet hours in the customer's time zone")
        step.save(update_fields=["due_at", "reason"])
        transaction.on_commit(lambda: _advance_later(outreach.pk, eta=quiet_end))
        return "delayed"
    if outreach.campaign_id is not None:
        slot = step.slot_at or throttle.slot_reserve(
            channel_id=channel.pk,
            rate=throttle.channel_rate(campaign=outreach.campaign, channel=channel),
            now=now,
        )
        if slot > now + timedelta(milliseconds=500):
            step.due_at = step.slot_at = slot
            step.save(update_fields=["due_at", "slot_at"])
            transaction.on_commit(lambda: _advance_later(outreach.pk, eta=slot))
            return "delayed"
    meta["outreach_step"] = step.number
    body = outreach.body
    if channel.kind == "email":
        url = consent.unsubscribe_url(customer_id=outreach.customer_id, channel_kind="email")
        meta["list_unsubscribe"] = url
        if outreach.subject:
            meta["proactive_subject"] = outreach.subject
        footer = _("To stop receiving these emails: %(url)s") % {"url": url}
        body = f"{body}\n\n{footer}"
    message = _message_write(
        outreach=outreach, thread=thread, channel=channel, recipient=recipient, body=body, meta=meta, now=now
    )
    step_move(
        step,
        StepState.WAITING,
        message=message,
        claimed_at=now,
        deadline_at=now + timedelta(minutes=step.wait_minutes),
        reason="",
    )
    if step.wait_minutes:
        transaction.on_commit(lambda: _advance_later(outreach.pk, eta=step.deadline_at))
    return "claimed"


def _message_case(outreach: Outreach, thread: Thread) -> Case | None:
    if outreach.case_id is not None:
        return outreach.case
    return (
        Case.objects.filter(thread=thread).exclude(status=CaseStatus.RESOLVED).first()
        or Case.objects.filter(thread=thread).order_by("-opened_at").first()
    )


def _message_write(*, outreach, thread, channel, recipient, body, meta, now) -> Message:
    """The step's outbound message, queued, as conversations.services writes a reply."""
    from conversations.tasks import message_deliver

    # The thread lock, as every writer of the thread takes it (inbound, replies).
    Thread.objects.select_for_update().filter(pk=thread.pk).values_list("pk", flat=True).get()
    case = _message_case(outreach, thread)
    message = Message.objects.create(
        thread=thread,
        case=case,
        channel=channel,
        identity=recipient,
        direction=Direction.OUT,
        kind=MessageKind.TEXT,
        # Proactive, not an answer: never a first response nor an agent message in the KPIs.
        author=Author.BOT,
        author_user=outreach.created_by,
        body=body,
        meta=meta,
        status=DeliveryStatus.QUEUED,
        created_at=now,
    )
    Thread.objects.filter(pk=thread.pk).update(last_message_at=now)
    signals.message_event_emit("message.created", message, customer_id=thread.customer_id)
    transaction.on_commit(lambda: message_deliver.delay(message.pk))
    transaction.on_commit(lambda: signals.message_announce(message, case))
    return message


def outreaches_stop_on_reply(*, message) -> int:
    """The customer wrote (anywhere): their outreaches under way have done their job."""
    return outreaches_stop_on_replies(messages=[message])


def outreaches_stop_on_replies(*, messages) -> int:
    """outreaches_stop_on_reply for a drain batch's customer messages: one look-up for all of them."""
    # On every customer message, nearly always to find nothing: one short SQL
    # statement over the (customer, status) index, without the ORM's compiling
    # (which cost more than the lookup; bench/README.md, the pipeline profile),
    # and one per drain batch rather than one per message.
    latest: dict[int, datetime] = {}
    for message in messages:
        customer_id = message.thread.customer_id
        latest[customer_id] = max(latest.get(customer_id, message.created_at), message.created_at)
    if not latest:
        return 0
    table = connection.ops.quote_name(Outreach._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, customer_id, created_at FROM {table} WHERE customer_id = ANY(%s::bigint[]) "  # noqa: S608 - our names
            "AND status IN (%s, %s) AND created_at <= %s ORDER BY id",
            [list(latest), OutreachStatus.RUNNING, OutreachStatus.PLANNED, max(latest.values())],
        )
        # An outreach started after the customer's last message in the batch was not replied to.
        ids = [pk for pk, customer_id, created_at in cursor.fetchall() if created_at <= latest[customer_id]]
    stopped = 0
    for outreach_id in ids:
        with transaction.atomic():
            outreach = Outreach.objects.select_for_update().filter(pk=outreach_id).first()
            if outreach is None or outreach.is_finished:
                continue
            steps = list(OutreachStep.objects.select_for_update().filter(outreach=outreach))
            for step in steps:
                if step.state in STEP_OPEN:
                    step_move(step, StepState.CANCELLED, reason=_("the customer replied"))
            outreach_move(outreach, OutreachStatus.REPLIED, reason=_("the customer replied"))
            if outreach.source != Source.CAMPAIGN or outreach.steps.exclude(message=None).exists():
                _event(outreach, _("Outreach #%(id)s stopped: the customer replied.") % {"id": outreach.pk})
            stopped += 1
    return stopped


def outreach_cancel(*, outreach: Outreach, by=None) -> Outreach:
    with transaction.atomic():
        outreach = Outreach.objects.select_for_update().get(pk=outreach.pk)
        if outreach.is_finished:
            raise ValidationError(_("This outreach has already ended."))
        for step in OutreachStep.objects.select_for_update().filter(outreach=outreach, state__in=STEP_OPEN):
            step_move(step, StepState.CANCELLED)
        outreach_move(outreach, OutreachStatus.CANCELLED, reason=_("cancelled"))
        if outreach.source != Source.CAMPAIGN:
            _event(outreach, _("Outreach #%(id)s cancelled.") % {"id": outreach.pk})
    return outreach
