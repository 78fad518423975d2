"""The real `telegram.Bot`, pointed at settings.TELEGRAM_API_BASE_URL, run from sync code.

python-telegram-bot is async; our adapters and tasks are sync, so each call
runs in its own short event loop (`async_to_sync`) with its own HTTP pool that
is closed afterwards. No `getMe` round trip: the first real call tells us
whether the token works.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.conf import settings
from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from channels_adapters.base import PermanentSendError, SendError, TransientSendError, provider_base_url


def run(channel, action):
    """Run `await action(bot)` with a Bot for this channel and return its result."""
    token = channel.credentials.get("bot_token") or ""
    if not token:
        raise PermanentSendError(f"The channel {channel.name} has no bot token: an admin must fill it in.")
    base = provider_base_url(settings.TELEGRAM_API_BASE_URL, credential=token, provider="telegram")

    async def call():
        timeout = settings.HELPDESK["HTTP_TIMEOUT_SECONDS"]
        request = HTTPXRequest(
            connection_pool_size=4, read_timeout=timeout, write_timeout=timeout, connect_timeout=timeout
        )
        bot = Bot(
            token,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=request,
            get_updates_request=request,
        )
        await request.initialize()
        try:
            return await action(bot)
        finally:
            await request.shutdown()

    return async_to_sync(call)()


def send_error(exc: TelegramError) -> SendError:
    """Telegram's error, as a retry or as words the agent can act on."""
    words = str(exc)
    if isinstance(exc, RetryAfter):
        with warnings.catch_warnings():
            # PTB warns that retry_after will become a timedelta; both are handled here.
            warnings.simplefilter("ignore")
            wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return TransientSendError(
            f"Telegram asks us to slow down ({words}).", code="429", retry_after=seconds
        )
    if isinstance(exc, Forbidden):
        return PermanentSendError(
            f"The customer has blocked the bot or never started a chat with it on Telegram ({words}).",
            code="403",
        )
    if isinstance(exc, InvalidToken):
        return PermanentSendError(
            f"Telegram rejected the bot token: an admin must check the channel's bot_token ({words}).",
            code="401",
        )
    if isinstance(exc, ChatMigrated):
        return PermanentSendError(f"This Telegram chat moved to another id ({words}).", code="400")
    if isinstance(exc, BadRequest):
        return PermanentSendError(f"Telegram refused the message: {words}.", code="400")
    if isinstance(exc, TimedOut):
        return TransientSendError(f"Telegram did not answer in time ({words}).")
    if isinstance(exc, NetworkError):
        return TransientSendError(f"Could not reach Telegram: {words}.")
    return TransientSendError(f"Telegram error: {words}.")
