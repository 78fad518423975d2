"""SMS through Twilio: a customer's text lands on the thread of their phone number.

The admin action "Register the webhook URL" points the Twilio number's "A
message comes in" webhook at the channel's webhook URL (HTTP POST), as one
would in Twilio's console. Everything else is in `twilio.messaging`.
"""

from channels_adapters.twilio.messaging import TwilioMessagingAdapter


class SmsAdapter(TwilioMessagingAdapter):
    kind = "sms"
