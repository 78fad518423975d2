"""SMS through Twilio: a customer's text lands on the thread of their phone number.

Set the number's "A message comes in" webhook in Twilio's console to the
channel's webhook URL (HTTP POST). Everything else is in `twilio.messaging`.
"""

from channels_adapters.twilio.messaging import TwilioMessagingAdapter


class SmsAdapter(TwilioMessagingAdapter):
    kind = "sms"
