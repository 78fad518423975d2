"""What SMS, WhatsApp-through-Twilio and Voice share: signatures, the REST client, errors."""
