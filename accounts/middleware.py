"""The agent's own language choice wins over the browser's.

Runs after Django's LocaleMiddleware (which has activated the Accept-Language
language, or settings.LANGUAGE_CODE) and after AuthenticationMiddleware. The
choice is read from the session, put there at login and when saved, so a
request costs no query; a session from before this existed is filled once.
"""

from django.utils import translation
from django.utils.deprecation import MiddlewareMixin

from accounts.selectors import user_language
from accounts.services import SESSION_LANGUAGE_KEY


class UserLanguageMiddleware(MiddlewareMixin):
    def process_request(self, request):
        session = getattr(request, "session", None)
        if session is None or not session.get("_auth_user_id"):
            return
        language = session.get(SESSION_LANGUAGE_KEY)
        if language is None:
            language = session[SESSION_LANGUAGE_KEY] = user_language(user=request.user)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
