from accounts.models import UserPreferences


def user_language(*, user) -> str:
    """The language this user chose, or "" to follow their browser."""
    if not user or not user.is_authenticated:
        return ""
    return UserPreferences.objects.filter(user=user).values_list("language", flat=True).first() or ""
