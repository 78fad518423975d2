"""What the audit log hears without anyone calling it: logins, role changes, channel credentials.

Channel credentials are compared before and after a save (any writer: the admin,
the API, a shell), and only the names of the keys that changed are kept."""

from __future__ import annotations

from django.contrib.auth import get_user_model, user_logged_in, user_login_failed
from django.db.models.signals import m2m_changed, post_save, pre_save

from audit.models import AuditAction
from audit.services import audit_record


def on_login(sender, request, user, **kwargs):
    audit_record(action=AuditAction.LOGIN, actor=user, target=user, request=request)


def on_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        action=AuditAction.LOGIN_FAILED,
        target_type="user",
        details={"username": username},
        request=request,
        actor_label=username,
    )


def on_role_changed(sender, instance, action, pk_set, model, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    User = get_user_model()
    field = "groups" if sender is User.groups.through else "user_permissions"
    if isinstance(instance, User):
        users = [instance.pk]
        changed = sorted(pk_set or [])
    else:  # group.user_set.add(...): the instance is the group, pk_set the users
        users = sorted(pk_set or [])
        changed = [instance.pk]
    names = _names(field, changed)
    from audit.context import current_request

    request = current_request()
    for user_id in users:
        audit_record(
            request=request,
            action=AuditAction.ROLE_CHANGED,
            target_type="user",
            target_id=user_id,
            details={"field": field, "change": action.removeprefix("post_"), "ids": changed, "names": names},
        )


def _names(field, ids):
    from django.contrib.auth.models import Group, Permission

    if not ids:
        return []
    if field == "groups":
        return list(Group.objects.filter(pk__in=ids).order_by("name").values_list("name", flat=True))
    return list(Permission.objects.filter(pk__in=ids).order_by("codename").values_list("codename", flat=True))


def on_channel_pre_save(sender, instance, raw=False, **kwargs):
    if raw:
        return
    before = sender.objects.filter(pk=instance.pk).only("credentials").first() if instance.pk else None
    instance._audit_credentials_before = dict(before.credentials or {}) if before else None


def on_channel_post_save(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    before = getattr(instance, "_audit_credentials_before", None) or {}
    after = dict(instance.credentials or {})
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if not changed:
        return
    from audit.context import current_request

    request = current_request()
    audit_record(
        action=AuditAction.CHANNEL_CREDENTIALS_CHANGED,
        target=instance,
        details={"keys": changed, "created": created, "kind": instance.kind},
        request=request,
    )


def _acting_request():
    """The request of a signed-in user, if one is being served: edits by people are
    audited, the ingestion path creating identities for a webhook is not."""
    from audit.context import current_request

    request = current_request()
    user = getattr(request, "user", None)
    return request if user is not None and user.is_authenticated else None


def on_identity_saved(sender, instance, created, raw=False, **kwargs):
    request = _acting_request()
    if raw or request is None or not created:
        return
    audit_record(
        action=AuditAction.IDENTITY_ADDED,
        target_type="customer",
        target_id=instance.customer_id,
        details={"identity_id": instance.pk, "kind": instance.kind},
        request=request,
    )


def on_identity_deleted(sender, instance, **kwargs):
    request = _acting_request()
    if request is None:
        return
    audit_record(
        action=AuditAction.IDENTITY_REMOVED,
        target_type="customer",
        target_id=instance.customer_id,
        details={"identity_id": instance.pk, "kind": instance.kind},
        request=request,
    )


def on_customer_saved(sender, instance, created, update_fields=None, raw=False, **kwargs):
    request = _acting_request()
    if raw or request is None or created or not update_fields:
        return
    fields = sorted(set(update_fields) & {"name", "attributes", "legal_hold", "legal_hold_reason"})
    if not fields or getattr(instance, "_audit_skip", False):
        return
    audit_record(
        action=AuditAction.CUSTOMER_UPDATED, target=instance, details={"fields": fields}, request=request
    )


def on_domain_event(sender, event, payload, ordering_key, **kwargs):
    # A merge by anyone (inbox, API, automation): the actor is whoever is being served.
    if event != "customer.merged":
        return
    from audit.context import current_request

    audit_record(
        action=AuditAction.CUSTOMER_MERGED,
        target_type="customer",
        target_id=payload["customer"]["id"],
        details={"merged_customer_id": payload["merged_customer_id"], "moved": payload.get("moved", {})},
        request=current_request(),
    )


def connect() -> None:
    from django.db.models.signals import post_delete

    from channels_adapters.models import Channel
    from conversations.signals import domain_event
    from customers.models import Customer, Identity

    post_save.connect(on_identity_saved, sender=Identity, dispatch_uid="audit.identity_saved")
    post_delete.connect(on_identity_deleted, sender=Identity, dispatch_uid="audit.identity_deleted")
    post_save.connect(on_customer_saved, sender=Customer, dispatch_uid="audit.customer_saved")
    domain_event.connect(on_domain_event, dispatch_uid="audit.domain_event")

    User = get_user_model()
    user_logged_in.connect(on_login, dispatch_uid="audit.login")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit.login_failed")
    m2m_changed.connect(on_role_changed, sender=User.groups.through, dispatch_uid="audit.groups")
    m2m_changed.connect(on_role_changed, sender=User.user_permissions.through, dispatch_uid="audit.perms")
    pre_save.connect(on_channel_pre_save, sender=Channel, dispatch_uid="audit.channel_pre")
    post_save.connect(on_channel_post_save, sender=Channel, dispatch_uid="audit.channel_post")
