"""Email bookkeeping the shared models have no place for."""

from django.db import models


class MailboxState(models.Model):
    """Where IMAP polling of one folder stands: UIDs are only comparable within one UIDVALIDITY.

    When the server changes UIDVALIDITY (mailbox rebuilt, migrated) every UID we
    remember is meaningless, so the folder is read again from the start; the
    Message-ID dedupe keeps that from making second messages.
    """

    channel = models.ForeignKey("channels_adapters.Channel", on_delete=models.CASCADE, related_name="+")
    folder = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "folder"], name="mailbox_state_unique")]

    def __str__(self):
        return f"{self.channel_id}:{self.folder} uidvalidity={self.uidvalidity} last_uid={self.last_uid}"
