"""An encrypted JSON field for secrets kept at rest (channel credentials)."""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class EncryptionKeyError(ImproperlyConfigured):
    """FIELD_ENCRYPTION_KEYS is malformed or lacks the key stored secrets were written with.

    A deployment fault, not bad input: webhooks answer 503 (providers retry
    later) and /readyz fails, instead of every request ending in a 500.
    """


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise EncryptionKeyError(
            "FIELD_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypted_readable(token: str | None) -> bool:
    """Whether a stored token decrypts with the configured keys (readiness check)."""
    if not token:
        return True
    try:
        fernet().decrypt(token.encode())
    except InvalidToken:
        return False
    return True


class EncryptedJSONField(models.TextField):
    """Stores a JSON document as a Fernet token; Python sees the dict.

    MultiFernet lets an operator rotate keys: the first key encrypts, every key
    decrypts.
    """

    description = "JSON encrypted at rest with Fernet"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return {}
        try:
            plain = fernet().decrypt(value.encode())
        except InvalidToken as exc:
            raise EncryptionKeyError(
                "Cannot decrypt stored credentials: FIELD_ENCRYPTION_KEYS does not hold "
                "the key they were written with."
            ) from exc
        return json.loads(plain)

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if not value:
            return {}
        return json.loads(value)

    def get_prep_value(self, value):
        if value is None:
            value = {}
        return fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj))
