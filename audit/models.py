"""The audit log: who saw or changed what. Append-only (docs/privacy.md "Audit log").

Rows are written by services (audit.services.audit_record) and by the receivers
of login, role and channel credential changes. Nothing updates or deletes them:
the model refuses, the admin offers neither, and on PostgreSQL a trigger refuses
UPDATE and DELETE from any client.

No customer's personal data goes into a row (ids, kinds and field names only),
so an erasure never has to touch the log and the log never keeps what was erased.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    LOGIN = "login", _("Logged in")
    LOGIN_FAILED = "login_failed", _("Failed login")
    ROLE_CHANGED = "role_changed", _("Role or permissions changed")
    CHANNEL_CREDENTIALS_CHANGED = "channel_credentials_changed", _("Channel credentials changed")
    CUSTOMER_VIEWED = "customer_viewed", _("Customer viewed")
    CUSTOMER_UPDATED = "customer_updated", _("Customer edited")
    IDENTITY_ADDED = "identity_added", _("Identity added")
    IDENTITY_REMOVED = "identity_removed", _("Identity removed")
    CUSTOMER_MERGED = "customer_merged", _("Customers merged")
    CUSTOMER_UNMERGED = "customer_unmerged", _("Merge undone")
    CUSTOMER_EXPORTED = "customer_exported", _("Customer data exported")
    CUSTOMER_ERASED = "customer_erased", _("Customer erased")
    ERASURE_REFUSED = "erasure_refused", _("Erasure refused")
    LEGAL_HOLD_CHANGED = "legal_hold_changed", _("Legal hold changed")
    CUSTOMERS_IMPORTED = "customers_imported", _("Customers imported")
    CONVERSATIONS_IMPORTED = "conversations_imported", _("Conversations imported")
    RETENTION_RUN = "retention_run", _("Retention run")
    AUDIT_EXPORTED = "audit_exported", _("Audit log exported")


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogIsAppendOnly(_("Audit entries are never changed."))

    def delete(self):
        raise AuditLogIsAppendOnly(_("Audit entries are never deleted."))


class AuditLogIsAppendOnly(Exception):
    pass


class AuditEntry(models.Model):
    # No database constraint: a user deleted later leaves their entries (and their
    # name, kept in actor_label) as they were; a cascade would have to change them.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name=_("who"),
    )
    actor_label = models.CharField(_("who (as then)"), max_length=150, blank=True)
    action = models.CharField(_("what"), max_length=40, choices=AuditAction.choices, db_index=True)
    target_type = models.CharField(_("target type"), max_length=40, blank=True, db_index=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True, db_index=True)
    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        indexes = [models.Index(fields=["target_type", "target_id", "at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label or '-'} {self.action} {self.target}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise AuditLogIsAppendOnly(_("Audit entries are never changed."))
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly(_("Audit entries are never deleted."))

    @property
    def target(self) -> str:
        return f"{self.target_type}#{self.target_id}" if self.target_type else ""
