"""Phone calls through Twilio Voice: every call is a message on the caller's thread.

The admin action "Register the webhook URL" sets the Twilio number's "A call
comes in" webhook to the channel's webhook URL and its "Call status changes"
callback to the same URL with ``?event=call-status`` (both HTTP POST). Our TwiML then points Twilio's later
requests at the same URL with other ``event`` values; all are signed.

- (no event) a call comes in: a `call` message (meta per docs/contracts.md) and,
  once stored, a screen pop to agents (`conversations.calls`). The TwiML answer
  is built from the stored request and the channel's settings alone, with no
  database work, because Twilio waits at most 15 seconds:
  forward (`<Dial>` to `forward_to`, whispering the customer's name to the agent
  who picks up) or, out of hours or with nobody to forward to, voicemail.
- ``dial``: how the forward ended. Not answered -> voicemail TwiML; answered ->
  `answered` and `talk_seconds` (DialCallDuration, the time spoken with the agent).
- ``whisper``: what the agent hears on picking up, before the caller is connected.
- ``recorded``/``recording``: the voicemail's recording; the message becomes `voicemail`.
- ``transcription``: the voicemail's text, kept as meta ``transcript``.
- ``call-status``: the final CallStatus (completed, busy, no-answer, canceled,
  failed) and CallDuration. Earlier steps (queued, initiated, ringing,
  in-progress) are ignored on purpose: the first webhook already recorded them.

Callbacks repeat the call as an `InboundMessage` when they carry From/To, so a
callback processed before the first webhook (queues do not promise order) still
finds its call; (channel, CallSid) makes that one message.

Channel settings (all optional): ``forward_to`` (a number, ``sip:`` address, or a
list rung together), ``ring_seconds`` (20), ``whisper`` (true), ``language``
("en-US"), ``voice``, ``voicemail_greeting``, ``closed_greeting``,
``voicemail_max_seconds`` (120), ``transcribe`` (true), ``open_hours``
(``{"timezone": "Europe/Madrid", "mon": "09:00-18:00", ...}``; a day left out
is closed; no ``open_hours`` means always open).
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy
from twilio.twiml.voice_response import VoiceResponse

import conversations.calls  # noqa: F401 - connects the screen pop to new call messages
from channels_adapters.base import (
    ChannelAdapter,
    Ignored,
    InboundMessage,
    MessageUpdate,
    OutboundRefused,
    ParseError,
    PermanentSendError,
    Sender,
)
from channels_adapters.twilio import common
from customers.identity import phone_normalize
from customers.models import IdentityKind
from helpdesk.languages import channel_language, default_language

FINAL_CALL_STATUSES = ("completed", "busy", "no-answer", "canceled", "failed")
_EARLY_CALL_STATUSES = ("queued", "initiated", "ringing", "in-progress")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DEFAULT_GREETING = gettext_lazy(
    "Thank you for calling. Nobody can take your call right now. "
    "Please leave a message after the tone and we will get back to you."
)
THANKS = gettext_lazy("Thank you. We have your message. Goodbye.")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def is_open(channel_settings: dict, now: datetime | None = None) -> bool:
    """Whether calls are forwarded now, by the channel's opening hours."""
    hours = channel_settings.get("open_hours")
    if not hours:
        return True
    try:
        zone = ZoneInfo(hours.get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = (now or timezone.now()).astimezone(zone)
    spans = hours.get(_DAYS[local.weekday()])
    if not spans:
        return False
    for span in spans if isinstance(spans, list) else [spans]:
        try:
            start, end = (time.fromisoformat(part.strip()) for part in str(span).split("-", 1))
        except ValueError:
            continue
        if start <= local.time() < end:
            return True
    return False


class VoiceAdapter(ChannelAdapter):
    kind = "voice"
    identity_kinds = (IdentityKind.PHONE,)
    credential_keys = ("account_sid", "auth_token", "phone_number")
    ignored_events = (*(f"call-status:{s}" for s in _EARLY_CALL_STATUSES), "whisper", "outbound-call")

    def verify(self, channel, request):
        common.verify_signature(channel, request)

    def register_webhook(self, channel):
        return common.configure_number(
            channel,
            voice_url=common.hook_url(channel),
            voice_method="POST",
            status_callback=common.hook_url(channel, event="call-status"),
            status_callback_method="POST",
        )

    # TwiML -----------------------------------------------------------------

    def _say(self, response, channel, text):
        options = {"language": channel.settings.get("language") or "en-US"}
        if channel.settings.get("voice"):
            options["voice"] = channel.settings["voice"]
        # Our own words (the default greeting) are spoken in the line's language.
        with translation.override(channel_language(channel) or default_language()):
            response.say(str(text), **options)

    def voicemail_twiml(self, channel, *, greeting: str | None = None) -> str:
        conf = channel.settings
        response = VoiceResponse()
        self._say(response, channel, greeting or conf.get("voicemail_greeting") or DEFAULT_GREETING)
        record = {
            "max_length": _int(conf.get("voicemail_max_seconds")) or 120,
            "play_beep": True,
            "action": common.hook_url(channel, event="recorded"),
            "recording_status_callback": common.hook_url(channel, event="recording"),
            "recording_status_callback_event": "completed",
        }
        if conf.get("transcribe", True):
            record.update(
                transcribe=True, transcribe_callback=common.hook_url(channel, event="transcription")
            )
        response.record(**record)
        # <Record> ends when the caller hangs up or the time is up; say goodbye if they are still there.
        self._say(response, channel, THANKS)
        response.hangup()
        return response.to_xml()

    def forward_twiml(self, channel, *, caller: str) -> str:
        conf = channel.settings
        targets = conf.get("forward_to") or []
        targets = [targets] if isinstance(targets, str) else list(targets)
        response = VoiceResponse()
        dial = response.dial(
            timeout=_int(conf.get("ring_seconds")) or 20,
            action=common.hook_url(channel, event="dial"),
            answer_on_bridge=True,
        )
        whisper = (
            common.hook_url(channel, event="whisper", caller=caller) if conf.get("whisper", True) else None
        )
        for target in targets:
            target = str(target).strip()
            extra = {"url": whisper} if whisper else {}
            if target.lower().startswith("sip:"):
                dial.sip(target, **extra)
            else:
                dial.number(target, **extra)
        return response.to_xml()

    def incoming_twiml(self, channel, data) -> str:
        conf = channel.settings
        if not is_open(conf):
            return self.voicemail_twiml(channel, greeting=conf.get("closed_greeting"))
        if not conf.get("forward_to"):
            return self.voicemail_twiml(channel)
        return self.forward_twiml(channel, caller=data.get("From", ""))

    def whisper_twiml(self, channel, caller: str) -> str:
        from customers.models import Identity

        name = ""
        try:
            identity = (
                Identity.objects.select_related("customer")
                .filter(kind=IdentityKind.PHONE, address=phone_normalize(caller))
                .first()
            )
            name = identity.customer.name if identity else ""
        except Exception:  # noqa: BLE001 - a whisper must never stop the call from connecting
            name = ""
        response = VoiceResponse()
        if name:
            words = f"Call from {name}."
        elif caller.startswith("+") and caller[1:].isdigit():
            words = f"Call from {' '.join(caller)}."
        else:
            words = "Call from a withheld number."
        self._say(response, channel, words)
        return response.to_xml()

    def _form_for_answer(self, event):
        """The form as best it can be read: the caller is on the line and Twilio waits for
        TwiML, so an unreadable byte must not turn the answer into a 500 (parsing reports it)."""
        try:
            return common.form(event)
        except ParseError:
            return QueryDict(event.body_bytes.decode("utf-8", "replace"))

    def acknowledge(self, channel, event):
        name = common.event_name(event)
        if name in ("", "incoming"):
            data = self._form_for_answer(event)
            if data.get("Direction", "inbound") != "inbound":
                return common.twiml_response(common.EMPTY_TWIML)
            return common.twiml_response(self.incoming_twiml(channel, data))
        if name == "dial":
            data = self._form_for_answer(event)
            if data.get("DialCallStatus") == "completed":
                response = VoiceResponse()
                response.hangup()
                return common.twiml_response(response.to_xml())
            return common.twiml_response(self.voicemail_twiml(channel))
        if name == "whisper":
            caller = common.query_param(event, "caller")
            return common.twiml_response(self.whisper_twiml(channel, caller))
        if name == "recorded":
            response = VoiceResponse()
            self._say(response, channel, THANKS)
            response.hangup()
            return common.twiml_response(response.to_xml())
        # Status, recording and transcription callbacks: Twilio ignores the body.
        return common.twiml_response(common.EMPTY_TWIML)

    # Parsing ---------------------------------------------------------------

    def _caller(self, channel, data) -> Sender:
        caller = data.get("From") or data.get("Caller")
        try:
            phone_normalize(caller)
        except ValidationError:
            # A withheld number ("anonymous", "+266696687"): the call still belongs in the
            # history and the KPIs, on a customer of its own that an agent can merge later.
            return Sender(IdentityKind.API, f"{channel.key}:withheld:{data['CallSid']}", "Withheld number")
        return Sender(IdentityKind.PHONE, caller, data.get("CallerName", ""))

    def _call(self, channel, data, *, call_status: str) -> InboundMessage:
        caller = data.get("From") or data.get("Caller")
        sender = self._caller(channel, data)
        return InboundMessage(
            external_id=data["CallSid"],
            sender=sender,
            kind="call",
            text=f"Call from {caller}"
            if sender.kind == IdentityKind.PHONE
            else "Call from a withheld number",
            meta={
                "call_sid": data["CallSid"],
                "from": caller,
                "to": data.get("To") or data.get("Called", ""),
                "direction": "inbound",
                "call_status": call_status,
                "answered": False,
            },
        )

    def parse(self, channel, event):
        data = common.form(event)
        name = common.event_name(event) or "incoming"
        sid = data.get("CallSid")
        if not sid:
            raise ParseError(f"A voice '{name}' request needs CallSid")
        has_caller = bool(data.get("From") or data.get("Caller"))
        inbound = data.get("Direction", "inbound") == "inbound"
        if name == "incoming":
            if not inbound:
                # Calls we place through Twilio are logged by agents (conversations.calls.call_log).
                return [Ignored(event="outbound-call")]
            if not has_caller:
                raise ParseError("An incoming call needs From")
            return [self._call(channel, data, call_status="ringing")]
        if name == "whisper":
            return [Ignored(event="whisper")]

        items = []
        if has_caller and inbound:
            items.append(self._call(channel, data, call_status=data.get("CallStatus") or "in-progress"))
        if name == "call-status":
            status = (data.get("CallStatus") or "").lower()
            if status not in FINAL_CALL_STATUSES:
                return [Ignored(event=f"call-status:{status}")]
            meta = {"call_status": status}
            if _int(data.get("CallDuration")) is not None:
                meta["call_seconds"] = _int(data.get("CallDuration"))
            items.append(MessageUpdate(external_id=sid, meta=meta))
        elif name == "dial":
            status = (data.get("DialCallStatus") or "").lower()
            meta = {"dial_status": status}
            if status == "completed":
                meta.update(answered=True, talk_seconds=_int(data.get("DialCallDuration")) or 0)
            items.append(MessageUpdate(external_id=sid, meta=meta))
        elif name in ("recorded", "recording"):
            if not data.get("RecordingUrl") or data.get("RecordingStatus", "completed") != "completed":
                return [*items, Ignored(event=f"recording:{data.get('RecordingStatus') or 'empty'}")]
            items.append(
                MessageUpdate(
                    external_id=sid,
                    kind="voicemail",
                    meta={
                        "recording_url": data["RecordingUrl"],
                        "recording_sid": data.get("RecordingSid", ""),
                        "recording_seconds": _int(data.get("RecordingDuration")) or 0,
                    },
                )
            )
        elif name == "transcription":
            status = (data.get("TranscriptionStatus") or "").lower()
            meta = {"transcript_status": status}
            if status == "completed":
                meta["transcript"] = data.get("TranscriptionText", "")
            if data.get("RecordingUrl"):
                meta["recording_url"] = data["RecordingUrl"]
            items.append(MessageUpdate(external_id=sid, kind="voicemail", meta=meta))
        else:
            return [Ignored(event=f"voice:{name}")]
        return items

    # Outbound --------------------------------------------------------------

    def check_outbound(self, channel, *, thread, recipient, meta, last_inbound_at=None):
        raise OutboundRefused(
            f"{channel.name} carries phone calls, not written replies: answer by SMS, WhatsApp or "
            "another channel, or log the call you made."
        )

    def send(self, channel, message, recipient):
        raise PermanentSendError(f"{channel.name} carries phone calls, not written replies.")
