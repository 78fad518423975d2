"""Email bookkeeping the shared models have no place for."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class MailboxState(models.Model):
    """Where IMAP polling of one folder stands: UIDs are only comparable within one UIDVALIDITY.

    When the server changes UIDVALIDITY (mailbox rebuilt, migrated) every UID we
    remember is meaningless, so the folder is read again from the start; the
    Message-ID dedupe keeps that from making second messages.
    """

    channel = models.ForeignKey(
        "channels_adapters.Channel", on_delete=models.CASCADE, related_name="+", verbose_name=_("channel")
    )
    folder = models.CharField(max_length=255, verbose_name=_("folder"))
    uidvalidity = models.BigIntegerField(null=True, blank=True, verbose_name=_("uidvalidity"))
    last_uid = models.BigIntegerField(default=0, verbose_name=_("last uid"))
    polled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("polled at"))
    last_error = models.TextField(blank=True, verbose_name=_("last error"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "folder"], name="mailbox_state_unique")]
        verbose_name = _("mailbox state")
        verbose_name_plural = _("mailbox states")

    def __str__(self):
        return f"{self.channel_id}:{self.folder} uidvalidity={self.uidvalidity} last_uid={self.last_uid}"
