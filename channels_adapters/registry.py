"""One line per channel kind: the kind's adapter."""

from channels_adapters.api.adapter import ApiAdapter
from channels_adapters.base import ChannelAdapter
from channels_adapters.email.adapter import EmailAdapter
from channels_adapters.facebook.adapter import FacebookAdapter
from channels_adapters.instagram.adapter import InstagramAdapter
from channels_adapters.sms.adapter import SmsAdapter
from channels_adapters.telegram.adapter import TelegramAdapter
from channels_adapters.twitter.adapter import TwitterAdapter
from channels_adapters.voice.adapter import VoiceAdapter
from channels_adapters.webchat.adapter import WebchatAdapter
from channels_adapters.whatsapp.adapter import WhatsAppAdapter
from channels_adapters.whatsapp_twilio.adapter import WhatsAppTwilioAdapter

ADAPTERS: dict[str, ChannelAdapter] = {
    adapter.kind: adapter
    for adapter in (
        ApiAdapter(),
        FacebookAdapter(),
        InstagramAdapter(),
        WhatsAppAdapter(),
        TwitterAdapter(),
        SmsAdapter(),
        WhatsAppTwilioAdapter(),
        VoiceAdapter(),
        TelegramAdapter(),
        EmailAdapter(),
        WebchatAdapter(),
    )
}


class UnsupportedChannel(LookupError):
    pass


def adapter_for(kind: str) -> ChannelAdapter:
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise UnsupportedChannel(f"No adapter is installed for '{kind}' channels yet.") from None
