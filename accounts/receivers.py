from django.contrib.auth.signals import user_logged_in

from accounts.selectors import user_language
from accounts.services import SESSION_LANGUAGE_KEY


def remember_language(sender, request, user, **kwargs):
    # Read once at login, then from the session on every request.
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_LANGUAGE_KEY] = user_language(user=user)


def connect():
    user_logged_in.connect(remember_language, dispatch_uid="accounts.remember_language")
