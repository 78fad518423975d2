"""WhatsApp through Twilio: the same number as SMS and calls, with WhatsApp's rules.

Addresses carry Twilio's ``whatsapp:`` prefix on the wire; the identity is the
bare E.164 number, so a customer on WhatsApp, SMS and the phone is one person.
Free-form replies are refused before queueing when the customer's last
WhatsApp message is older than 24 hours; a Twilio Content template (meta
``template``: the ``HX...`` content SID, or ``{"content_sid", "variables"}``)
can still be sent.
"""

from channels_adapters.twilio.messaging import TwilioMessagingAdapter, WhatsAppWindowMixin


class WhatsAppTwilioAdapter(WhatsAppWindowMixin, TwilioMessagingAdapter):
    kind = "whatsapp_twilio"
    address_prefix = "whatsapp:"
