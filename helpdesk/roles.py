"""Who is who: agents answer, supervisors read KPIs, admins configure."""

AGENTS = "agents"
SUPERVISORS = "supervisors"
ADMINS = "admins"
ROLE_GROUPS = (AGENTS, SUPERVISORS, ADMINS)


def _groups(user) -> set[str]:
    cached = getattr(user, "_helpdesk_groups", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._helpdesk_groups = cached
    return cached


def user_is_agent(user) -> bool:
    """Anyone who may work the inbox: agents, supervisors and admins."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or bool(_groups(user) & set(ROLE_GROUPS))


def user_is_supervisor(user) -> bool:
    if not user or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or bool(_groups(user) & {SUPERVISORS, ADMINS})


def user_is_admin(user) -> bool:
    """Who configures the helpdesk (channels): admins and superusers."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or ADMINS in _groups(user)


def supervisor_required(message):
    """A page for supervisors and admins: anonymous visitors log in, agents get 403 with `message`."""
    import functools

    from django.contrib.auth.views import redirect_to_login
    from django.core.exceptions import PermissionDenied

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_is_supervisor(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
