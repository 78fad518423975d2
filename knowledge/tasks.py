"""The bot's work off the inbound path: thin tasks over knowledge.bot."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from knowledge import bot


# acks_late: a worker killed mid-turn leaves the task on the broker to run again;
# the turn's row, done in the bot's own transaction, makes the re-run a no-op.
@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=8)
def bot_message_turn(self, message_id: int):
    try:
        return bot.bot_turns_run(message_id=message_id)
    except (OperationalError, InterfaceError) as exc:
        # The database away: try again soon; the turn stays pending (and the redrive has it).
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 30)) from exc


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=8)
def bot_messages_turn(self, message_ids: list[int]):
    """A drain batch's turns: each message's (and its thread's earlier ones), in turn.

    A retry runs the list again; the turns done before the failure are skipped.
    """
    try:
        return [outcome for message_id in message_ids for outcome in bot.bot_turns_run(message_id=message_id)]
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 30)) from exc


@shared_task(ignore_result=True)
def bot_turns_redrive():
    return bot.bot_turns_redrive()


@shared_task(ignore_result=True)
def bot_turns_prune():
    return bot.bot_turns_prune()
