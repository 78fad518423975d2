from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import UserPreferences

# Where the chosen language is kept for the session: the middleware reads it
# there, so a request costs no query for it (see accounts/middleware.py).
SESSION_LANGUAGE_KEY = "helpdesk_language"


def user_preferences_update(*, user, language: str, session=None) -> UserPreferences:
    if language and language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": _("Choose one of the offered languages.")})
    with transaction.atomic():
        preferences, _created = UserPreferences.objects.select_for_update().get_or_create(user=user)
        preferences.language = language
        preferences.save(update_fields=["language", "updated_at"])
    if session is not None:
        session[SESSION_LANGUAGE_KEY] = language
    return preferences
