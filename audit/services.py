"""Writing the audit log. Callers pass ids and kinds, never a customer's personal data."""

from __future__ import annotations

from audit.models import AuditEntry


def request_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _label(user) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return user.get_username()[:150]


def audit_record(
    *,
    action: str,
    actor=None,
    target=None,
    target_type: str = "",
    target_id=None,
    details: dict | None = None,
    request=None,
    actor_label: str = "",
) -> AuditEntry:
    """One entry. Called inside the writer's transaction: a change that rolls back
    leaves no entry saying it happened."""
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target.pk
    if actor is None and request is not None and not actor_label:
        # Django's request under DRF's: DRF's `user` authenticates on first access, and a
        # failed authentication is itself audited (user_login_failed) - no recursion.
        user = getattr(getattr(request, "_request", request), "user", None)
        actor = user if user is not None and user.is_authenticated else None
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor_label or _label(actor),
        action=action,
        target_type=target_type,
        target_id="" if target_id is None else str(target_id),
        details=details or {},
        ip=request_ip(request),
    )
