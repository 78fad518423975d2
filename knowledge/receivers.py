"""The knowledge app listens to the core: the bot hears every new customer message."""

from conversations.signals import message_created


def on_message_created(sender, message, **kwargs):
    from knowledge import bot

    # Only queues the turn (a worker answers): the inbound path stays as fast with the bot on.
    bot.bot_turn_queue(message=message)


def connect():
    message_created.connect(on_message_created, dispatch_uid="knowledge.bot")
