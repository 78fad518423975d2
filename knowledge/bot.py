"""The 24/7 bot: answers a customer's question from the knowledge base, then steps aside.

It hears each new customer message (knowledge.receivers, after commit), decides
from the message and its channel alone whether it could be concerned, and if so
queues its turn for a worker (bot_turn_queue): the inbound path pays a row and a
broker push, not the search and the answer (bench/kb.py measures both). The
worker takes the turn (bot_turns_run) under the thread's lock, in the order the
customer wrote, once per message; its replies go out through the normal
outbound path (send_automatic: queued, sent by a worker, author=bot, never
counted as a response).

On a case: first confident answer -> "did that solve it?"; yes -> resolved by the
bot; no / "humano" / a low-confidence question / too many attempts -> handed over
to the human queue, and the bot is silent on that case from then on. It never
speaks on a case an agent has touched, nor on voice calls.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from conversations.models import Author, Case, CaseStatus, Direction, Message, MessageKind, Thread
from knowledge.models import BotSession, BotTurn, UnansweredQuestion
from knowledge.search import articles_search
from knowledge.text import detect_language, normalize, summary_of

logger = logging.getLogger(__name__)

# Channels whose adapter shows message.meta["quick_replies"] as buttons; elsewhere, numbers.
NATIVE_BUTTONS = {"facebook", "instagram", "telegram", "whatsapp", "webchat"}
NEVER = {"voice"}
HUMAN_WORDS = {
    "agent", "agente", "human", "humano", "humana", "person", "persona", "operator", "operador",
    "representative", "asesor", "someone", "alguien",
}  # fmt: skip
YES = {"si", "yes", "y", "ok", "vale", "yep", "sure", "solved", "resuelto", "perfecto", "genial", "great",
       "thanks", "gracias", "claro"}  # fmt: skip
NO = {"no", "nope", "nop", "n"}


def bot_config(channel) -> dict | None:
    """The channel's bot settings (channel.settings["bot"]), or None when it is off."""
    conf = (channel.settings or {}).get("bot") if isinstance(channel.settings, dict) else None
    if not isinstance(conf, dict) or conf.get("mode") not in ("always", "outside_hours"):
        return None
    return conf


def _on_duty(conf: dict, case: Case, now) -> bool:
    if conf["mode"] == "always":
        return True
    from kpis.services import business_hours_for, business_hours_now

    working, _next = business_hours_now(hours=business_hours_for(team_id=case.team_id), at=now)
    return not working


def _agent_touched(case: Case) -> bool:
    """An agent has worked on it: assigned, replied, noted, or changed it (a system line by them)."""
    if case.assignee_id:
        return True
    return Message.objects.filter(
        Q(author=Author.AGENT) | Q(kind=MessageKind.SYSTEM, author_user__isnull=False), case=case
    ).exists()


def _answering_a_survey(message: Message) -> bool:
    # The CSAT/NPS question went out last: the score is the kpis app's, not a question.
    last = (
        Message.objects.filter(
            thread_id=message.thread_id, direction=Direction.OUT, created_at__lte=message.created_at
        )
        .exclude(kind__in=(MessageKind.NOTE, MessageKind.SYSTEM))
        .order_by("-created_at", "-id")
        .values_list("meta", flat=True)
        .first()
    )
    return isinstance(last, dict) and "survey" in last


def language_fallback(channel, thread: Thread) -> str:
    for value in (
        (channel.settings or {}).get("language"),
        (thread.customer.attributes or {}).get("language")
        if isinstance(thread.customer.attributes, dict)
        else None,
        settings.LANGUAGE_CODE,
    ):
        if value and str(value)[:2] in ("es", "en"):
            return str(value)[:2]
    return "en"


def _intent(text: str, *, awaiting: bool) -> str | None:
    """What a short reply means: human, yes or no; None for a question."""
    tokens = normalize(text).split()
    if not tokens:
        return None
    if HUMAN_WORDS & set(tokens):
        return "human"
    if awaiting and len(tokens) <= 4:
        if tokens[0] in ("1",) or tokens[0] in YES:
            return "yes"
        if tokens[0] in ("2",) or tokens[0] in NO:
            return "no"
    return None


def _choices(lang: str) -> list[str]:
    with translation.override(lang):
        # Meta cuts button titles at 20 characters: keep them short in every language.
        return [pgettext("bot button", "Yes"), pgettext("bot button", "Talk to a person")]


def _could_concern(message: Message) -> dict | None:
    """The bot's settings when it could have a word to say on this message, else None.

    Only what the message and its channel (both in memory) tell: no query, so the
    inbound path pays nothing for it. Everything that needs the case is decided
    by the worker, at the time it answers.
    """
    if (
        message.direction != Direction.IN
        or message.author != Author.CUSTOMER
        or message.kind != MessageKind.TEXT
        or message.case_id is None
        or message.channel_id is None
        or not (message.body or "").strip()
    ):
        return None
    channel = message.channel
    if channel.kind in NEVER:
        return None
    return bot_config(channel)


def bot_turn_queue(*, message: Message) -> bool:
    """From message_created (after commit): queue the bot's turn for a worker; True if queued.

    The turn itself (search, answer, resolve, hand over) costs tens of
    milliseconds and would be paid by every inbound message while the provider
    waits: the inbound path only records that the turn is due and queues it.
    In a drain batch (conversations.signals.announcements_batched) the batch's
    turns are recorded and queued together at its end: one transaction and one
    task for the batch instead of one each per message.
    """
    if _could_concern(message) is None:
        return False
    from conversations.signals import batch_defer

    if not batch_defer(_bot_turns_queue, message):
        _bot_turns_queue([message])
    return True


def _bot_turns_queue(messages: list[Message]) -> None:
    try:
        _bot_turns_record(messages)
    except IntegrityError:
        if len(messages) == 1:
            raise
        # A message erased since it was announced fails its row and would take the
        # batch's with it: each on its own.
        for message in messages:
            try:
                _bot_turns_record([message])
            except IntegrityError:
                logger.warning("knowledge bot: message %s is gone, no turn", message.pk)


def _bot_turns_record(messages: list[Message]) -> None:
    from knowledge.tasks import bot_message_turn, bot_messages_turn

    # Alone in its transaction (after the messages' commits, as hooks are): only then may
    # its commit skip the WAL flush without making anyone else's commit skip it.
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if own_transaction and connection.vendor == "postgresql":
            # The rows are the bot's own bookkeeping, not the customers' messages (committed
            # durably just before): not waiting for its WAL flush halves this commit. A
            # database crash in the next instant may lose them; the task then finds no
            # turn and leaves the message to the agents, who have it anyway.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # The rows first: a task lost with the broker is still due (bot_turns_redrive).
        # A message is announced once; a second row would be a no-op anyway.
        BotTurn.objects.bulk_create([BotTurn(message_id=m.pk) for m in messages], ignore_conflicts=True)
        if len(messages) == 1:
            transaction.on_commit(lambda: bot_message_turn.delay(messages[0].pk))
        else:
            # A thread's latest message takes its earlier turns too, in order (bot_turns_run).
            latest: dict[int, int] = {}
            for m in messages:
                latest[m.thread_id] = max(m.pk, latest.get(m.thread_id, 0))
            ids = sorted(latest.values())
            transaction.on_commit(lambda: bot_messages_turn.delay(ids))


def bot_turns_run(*, message_id: int) -> list[str]:
    """The worker's part: this message's turn, after the customer's earlier ones, each once.

    Safe to run twice and in any order: under the thread's lock (the one every
    inbound message and every reply takes) the customer's pending turns up to
    this message are taken oldest first and marked done in the same transaction
    as the bot's writes. A turn already done (a redelivered task, or one an
    earlier task took in order) is skipped. Returns the outcomes, oldest first.
    """
    thread_id = Message.objects.filter(pk=message_id).values_list("thread_id", flat=True).first()
    if thread_id is None:
        return []  # the message was deleted (privacy erasure, a merge) before its turn
    outcomes = []
    with transaction.atomic():
        Thread.objects.select_for_update().filter(pk=thread_id).values_list("pk", flat=True).first()
        pending = BotTurn.objects.filter(done_at__isnull=True, message__thread_id=thread_id)
        turns = list(
            pending.filter(message_id__lte=message_id)
            .select_related("message__channel", "message__identity")
            .order_by("message_id")
        )
        # A backlog (workers down for a while) is not answered late: see bot_turns_redrive.
        stale_before = timezone.now() - timedelta(seconds=settings.KNOWLEDGE["BOT_TURN_STALE_SECONDS"])
        for turn in turns:
            if turn.queued_at < stale_before:
                turn.outcome = BotTurn.Outcome.STALE
            else:
                turn.outcome = _turn_take(message=turn.message)
            turn.done_at = timezone.now()
            turn.save(update_fields=["outcome", "done_at"])
            outcomes.append(turn.outcome)
    return outcomes


def _turn_take(*, message: Message) -> str:
    # The channel's settings now, not when the message came: switched off since, silent.
    conf = _could_concern(message)
    if conf is None:
        return BotTurn.Outcome.SILENT
    try:
        with transaction.atomic():
            return bot_turn(message=message, channel=message.channel, conf=conf) or BotTurn.Outcome.SILENT
    except (OperationalError, InterfaceError):
        raise  # the database is away: the task retries the whole run later
    except Exception:  # noqa: BLE001 - the bot failing must leave the case to the agents, never loop
        logger.exception("knowledge bot: could not handle message %s", message.pk)
        return BotTurn.Outcome.FAILED


def bot_turns_redrive(*, now=None) -> dict:
    """Beat task body: queue again the turns whose task was lost; give up on those too old.

    An answer that comes minutes late is worse than none: the customer has
    written again or gone, and the case is in the agents' queue all along.
    """
    from knowledge.tasks import bot_message_turn

    now = now or timezone.now()
    conf = settings.KNOWLEDGE
    pending = BotTurn.objects.filter(done_at__isnull=True)
    stale = pending.filter(queued_at__lt=now - timedelta(seconds=conf["BOT_TURN_STALE_SECONDS"])).update(
        outcome=BotTurn.Outcome.STALE, done_at=now
    )
    lost = list(
        pending.filter(queued_at__lt=now - timedelta(seconds=conf["BOT_TURN_REDRIVE_AFTER_SECONDS"]))
        .order_by("message_id")
        .values_list("message_id", flat=True)[:1000]
    )
    for message_id in lost:
        bot_message_turn.delay(message_id)
    return {"requeued": len(lost), "stale": stale}


def bot_turns_prune(*, now=None, batch: int = 5000) -> int:
    """Beat task body: forget the turns done long ago; returns how many rows went.

    A done turn only guards against a task delivered twice, which happens within
    minutes; kept forever the table would grow by one row per customer message.
    What the bot did stays where people read it: the case's messages and its
    BotSession. Deleted in batches so no statement holds many locks at once.
    """
    now = now or timezone.now()
    before = now - timedelta(days=settings.KNOWLEDGE["BOT_TURN_KEEP_DAYS"])
    done = BotTurn.objects.filter(queued_at__lt=before, done_at__isnull=False)
    removed = 0
    while True:
        ids = list(done.values_list("message_id", flat=True)[:batch])
        if not ids:
            return removed
        removed += BotTurn.objects.filter(message_id__in=ids).delete()[0]


def bot_turn(*, message: Message, channel, conf: dict) -> str | None:
    """One customer message, one decision. Returns what the bot did (for tests and benches)."""
    now = timezone.now()
    with transaction.atomic():
        # Thread, then case: the project's lock order (conversations.services.receive_inbound).
        # Taken at run time, so an agent who answered while the turn waited is seen below.
        thread = Thread.objects.select_for_update().select_related("customer").get(pk=message.thread_id)
        case = Case.objects.select_for_update().filter(pk=message.case_id).first()
        if case is None or case.status == CaseStatus.RESOLVED:
            return None
        session = BotSession.objects.filter(case=case).first()
        if session is not None and session.state != BotSession.State.AWAITING:
            return None  # handed over or resolved once: the bot never comes back to a case
        if _agent_touched(case):
            if session is not None:
                session.state, session.handoff_reason = BotSession.State.HANDED_OFF, "agent"
                session.save(update_fields=["state", "handoff_reason", "updated_at"])
            return None
        if session is None and (not _on_duty(conf, case, now) or _answering_a_survey(message)):
            return None
        text = message.body.strip()
        lang = (
            session.language
            if session
            else detect_language(text, fallback=language_fallback(channel, thread))
        )
        intent = _intent(text, awaiting=session is not None)
        if intent == "human":
            return _handoff(case, session, channel, message, lang, reason="asked")
        if session is not None and intent == "yes":
            return _resolve(case, session, channel, message, lang)
        if session is not None and intent == "no":
            return _handoff(case, session, channel, message, lang, reason="not_solved")
        if session is not None and session.answers >= settings.KNOWLEDGE["BOT_MAX_ANSWERS"]:
            return _handoff(case, session, channel, message, lang, reason="attempts")
        hits = articles_search(query=text, language=lang, limit=1)
        best = hits[0] if hits else None
        if best is None or best.score < settings.KNOWLEDGE["BOT_THRESHOLD"]:
            UnansweredQuestion.objects.create(
                case=case,
                language=lang,
                text=text[:500],
                normalized=normalize(text),
                best_score=best.score if best else None,
            )
            reason = "low_confidence" if session is None else "attempts"
            return _handoff(case, session, channel, message, lang, reason=reason)
        return _answer(case, session, channel, message, lang, conf, best)


def _send(case, channel, message, body, meta) -> bool:
    from conversations.services import send_automatic

    try:
        # On the channel and address the customer just used.
        send_automatic(case=case, body=body, channel=channel, identity=message.identity, meta=meta)
    except ValidationError as exc:
        logger.warning("knowledge bot: could not answer on case %s: %s", case.pk, "; ".join(exc.messages))
        return False
    return True


def _answer(case, session, channel, message, lang, conf, hit) -> str:
    article = hit.article
    native = channel.kind in NATIVE_BUTTONS
    yes, person = _choices(lang)
    with translation.override(lang):
        lines = []
        if session is None:
            lines.append(
                _("I'm %(name)s, the automatic assistant.") % {"name": conf.get("name") or _("the bot")}
            )
        lines += [summary_of(article), article.public_url, ""]
        lines.append(_("Did this solve your question?"))
        if not native:
            lines.append(_("Reply 1 %(yes)s / 2 %(person)s") % {"yes": yes, "person": person})
    meta = {"bot": {"article": article.pk, "score": hit.score, "name": conf.get("name") or ""}}
    if native:
        meta["quick_replies"] = [yes, person]
    if not _send(case, channel, message, "\n".join(lines), meta):
        return _handoff(case, session, channel, message, lang, reason="send_failed", tell=False)
    if session is None:
        session = BotSession(case=case, channel=channel, language=lang, question=message.body[:2000])
    session.state = BotSession.State.AWAITING
    session.article, session.score = article, hit.score
    session.answers += 1
    session.save()
    return "answered"


def _resolve(case, session, channel, message, lang) -> str:
    from conversations.cases import set_case_status
    from conversations.services import system_event_add

    with translation.override(lang):
        _send(
            case, channel, message, _("Great, glad it helped! Write again whenever you need us."), {"bot": {}}
        )
    session.state = BotSession.State.RESOLVED
    session.save(update_fields=["state", "updated_at"])
    system_event_add(
        thread=case.thread,
        case=case,
        text=_("Resolved by the bot: the customer said the article answered them"),
    )
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=None)
    return "resolved"


def _handoff(case, session, channel, message, lang, *, reason: str, tell: bool = True) -> str:
    """To the human queue at once: the case keeps its priority, team and place in line."""
    from conversations import signals
    from conversations.services import system_event_add

    if session is None:
        session = BotSession(case=case, channel=channel, language=lang, question=message.body[:2000])
    session.state = BotSession.State.HANDED_OFF
    session.handoff_reason = reason
    session.save()
    reasons = {
        "asked": _("the customer asked for a person"),
        "not_solved": _("the article did not solve it"),
        "attempts": _("a second question it could not settle"),
        "low_confidence": _("no confident answer in the knowledge base"),
        "send_failed": _("its answer could not be sent"),
    }
    system_event_add(
        thread=case.thread,
        case=case,
        text=_("Handed over by the bot: %(reason)s") % {"reason": reasons[reason]},
    )
    if tell:
        with translation.override(lang):
            _send(
                case,
                channel,
                message,
                _("I'm passing you to a person on our team; they will answer here."),
                {"bot": {}},
            )
    transaction.on_commit(lambda: signals.case_announce(case, change="handed_off"))
    return "handed_off"
