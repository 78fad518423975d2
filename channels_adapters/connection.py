""" "Test connection" for a channel: one real call to the provider with the stored credentials.

Each check uses the same client the adapter sends with (httpx for Meta and X,
the `twilio` client, `telegram.Bot`, smtplib and imaplib), so a channel that
passes here can send. The answer is one sentence in plain words for the admin.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from dataclasses import dataclass

import httpx
import requests
from django.conf import settings
from django.utils.translation import gettext as _
from telegram.error import InvalidToken, TelegramError
from twilio.base.exceptions import TwilioRestException

from channels_adapters.base import SendError


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str


class ConnectionProblem(Exception):
    pass


def _timeout() -> float:
    return settings.HELPDESK["HTTP_TIMEOUT_SECONDS"]


def _need(channel, *keys):
    missing = [key for key in keys if not channel.credentials.get(key)]
    if missing:
        raise ConnectionProblem(_("Fill in %(keys)s first.") % {"keys": ", ".join(missing)})


def _graph_me(channel, *, token_key: str, path: str, fields: str) -> dict:
    from channels_adapters.meta.graph import graph_request

    _need(channel, token_key)
    try:
        return graph_request("GET", path, token=channel.credentials[token_key], params={"fields": fields})
    except SendError as exc:
        raise ConnectionProblem(
            _("Meta refused the %(key)s: %(reason)s") % {"key": token_key, "reason": exc.reason}
        ) from exc


def _check_facebook(channel) -> str:
    me = _graph_me(channel, token_key="page_access_token", path="me", fields="id,name")
    page_id = str(channel.credentials.get("page_id") or "")
    if page_id and str(me.get("id")) != page_id:
        raise ConnectionProblem(
            _("The page access token belongs to page %(found)s, not to page_id %(page)s.")
            % {"found": me.get("id"), "page": page_id}
        )
    return _("Meta knows this token: page “%(name)s” (%(id)s).") % {
        "name": me.get("name", ""),
        "id": me.get("id"),
    }


def _check_instagram(channel) -> str:
    me = _graph_me(channel, token_key="access_token", path="me", fields="id,username")
    return _("Meta knows this token: Instagram account %(name)s (%(id)s).") % {
        "name": me.get("username") or me.get("name") or "",
        "id": me.get("id"),
    }


def _check_whatsapp(channel) -> str:
    _need(channel, "phone_number_id")
    number = _graph_me(
        channel,
        token_key="access_token",
        path=str(channel.credentials["phone_number_id"]),
        fields="display_phone_number,verified_name",
    )
    return _("Meta knows this number: %(number)s (%(name)s).") % {
        "number": number.get("display_phone_number", ""),
        "name": number.get("verified_name", ""),
    }


def _check_twitter(channel) -> str:
    from channels_adapters.twitter.adapter import _x_error, oauth1_header

    _need(channel, "consumer_key", "consumer_secret", "access_token", "access_token_secret")
    url = f"{settings.X_API_BASE_URL}/2/users/me"
    try:
        response = httpx.get(
            url,
            headers={"Authorization": oauth1_header("GET", url, credentials=channel.credentials)},
            timeout=_timeout(),
        )
    except httpx.HTTPError as exc:
        raise ConnectionProblem(_("Could not reach X: %(error)s") % {"error": exc}) from exc
    if response.status_code >= 400:
        raise ConnectionProblem(_x_error(response).reason)
    user = (response.json() or {}).get("data") or {}
    user_id = str(channel.credentials.get("user_id") or "")
    if user_id and str(user.get("id")) != user_id:
        raise ConnectionProblem(
            _("These keys belong to the X account %(found)s, not to user_id %(user)s.")
            % {"found": user.get("id"), "user": user_id}
        )
    return _("X knows these keys: @%(name)s (%(id)s).") % {
        "name": user.get("username", ""),
        "id": user.get("id"),
    }


def _check_twilio(channel) -> str:
    from channels_adapters.twilio import common

    _need(channel, "account_sid", "auth_token")
    client = common.rest_client(channel)
    try:
        account = client.api.v2010.accounts(channel.credentials["account_sid"]).fetch()
        number = str(channel.credentials.get("phone_number") or "")
        if number and not client.incoming_phone_numbers.list(phone_number=number, limit=1):
            raise ConnectionProblem(
                _("The Twilio account works, but it has no number %(number)s: check phone_number.")
                % {"number": number}
            )
    except TwilioRestException as exc:
        if exc.status == 401:
            raise ConnectionProblem(
                _("Twilio refused the account SID and auth token: check both (Twilio console, Account info).")
            ) from exc
        raise ConnectionProblem(common.send_error(exc).reason) from exc
    except requests.RequestException as exc:
        raise ConnectionProblem(_("Could not reach Twilio: %(error)s") % {"error": exc}) from exc
    return _("Twilio knows this account: “%(name)s” (%(status)s).") % {
        "name": account.friendly_name,
        "status": account.status,
    }


def _check_telegram(channel) -> str:
    from channels_adapters.telegram import client

    _need(channel, "bot_token")

    async def get_me(bot):
        return await bot.get_me()

    try:
        me = client.run(channel, get_me)
    except InvalidToken as exc:
        raise ConnectionProblem(_("Telegram rejected the bot token: copy it again from @BotFather.")) from exc
    except TelegramError as exc:
        raise ConnectionProblem(client.send_error(exc).reason) from exc
    return _("Telegram knows this bot: @%(name)s.") % {"name": me.username}


def _check_email(channel) -> str:
    from channels_adapters.email.adapter import SANDBOX_SMTP_HOST, channel_option
    from channels_adapters.email.imap import ImapPollError, _logout, imap_connect

    done = []
    creds = channel.credentials
    if creds.get("imap_host"):
        try:
            conn = imap_connect(channel)
        except ImapPollError as exc:
            raise ConnectionProblem(str(exc)) from exc
        try:
            folder = str(creds.get("imap_folder") or "INBOX")
            typ, _data = conn.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                raise ConnectionProblem(
                    _("IMAP login works, but there is no folder “%(folder)s”.") % {"folder": folder}
                )
        finally:
            _logout(conn)
        done.append(_("IMAP login to %(host)s works") % {"host": creds["imap_host"]})
    if creds.get("smtp_host") and creds["smtp_host"] != SANDBOX_SMTP_HOST:
        host, port = str(creds["smtp_host"]), int(creds.get("smtp_port") or 587)
        security = str(channel_option(channel, "smtp_security", "ssl" if port == 465 else "starttls")).lower()
        try:
            if security == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=_timeout(), context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(host, port, timeout=_timeout())
                if security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionProblem(
                _("Could not reach the mail server %(host)s:%(port)s (%(security)s): %(error)s")
                % {"host": host, "port": port, "security": security, "error": exc}
            ) from exc
        try:
            if creds.get("smtp_user"):
                smtp.login(str(creds["smtp_user"]), str(creds.get("smtp_password") or ""))
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectionProblem(
                _(
                    "The mail server %(host)s refused the login for “%(user)s”: "
                    "check the SMTP user and password."
                )
                % {"host": host, "user": creds.get("smtp_user")}
            ) from exc
        except smtplib.SMTPException as exc:
            raise ConnectionProblem(
                _("The mail server %(host)s refused the login: %(error)s") % {"host": host, "error": exc}
            ) from exc
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()
        done.append(_("SMTP login to %(host)s works") % {"host": host})
    if not done:
        # Only the relay (signing_key) is set, or the demo's sandbox: nothing to log in to.
        raise ConnectionProblem(_("Fill in an IMAP or SMTP server first."))
    return "; ".join(done) + "."


def _check_api(channel) -> str:
    _need(channel, "callback_url")
    url = str(channel.credentials["callback_url"])
    try:
        response = httpx.get(url, timeout=_timeout())
    except httpx.HTTPError as exc:
        raise ConnectionProblem(
            _("Could not reach the callback URL %(url)s: %(error)s") % {"url": url, "error": exc}
        ) from exc
    return _("The callback URL answers (HTTP %(status)s).") % {"status": response.status_code}


CHECKS = {
    "facebook": _check_facebook,
    "instagram": _check_instagram,
    "whatsapp": _check_whatsapp,
    "twitter": _check_twitter,
    "sms": _check_twilio,
    "whatsapp_twilio": _check_twilio,
    "voice": _check_twilio,
    "telegram": _check_telegram,
    "email": _check_email,
    "api": _check_api,
}


def channel_connection_check(*, channel) -> ConnectionResult:
    check = CHECKS.get(channel.kind)
    if check is None:
        return ConnectionResult(True, _("This kind of channel has no provider to call."))
    try:
        return ConnectionResult(True, check(channel))
    except ConnectionProblem as exc:
        return ConnectionResult(False, str(exc))
    except SendError as exc:
        return ConnectionResult(False, exc.reason)
