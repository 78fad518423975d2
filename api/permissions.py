from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from helpdesk.roles import user_is_admin, user_is_agent


class IsAgent(BasePermission):
    """The API works as its user does in the inbox: agents, supervisors and admins."""

    message = _("The API is for agents, supervisors and admins.")

    def has_permission(self, request, view):
        return user_is_agent(request.user)


class IsAdmin(BasePermission):
    message = _("Channels are configured by admins only.")

    def has_permission(self, request, view):
        return user_is_admin(request.user)
