from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class CommitmentStatus(models.TextChoices):
    OPEN = "open", _("Open")
    FULFILLED = "fulfilled", _("Fulfilled")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class Commitment(models.Model):
    """A promise made to a customer, marked on the message where it was made.

    `customer` and `case` follow the message when customers are merged or cases
    folded (commitments/receivers.py): a promise never goes away with a merge.
    """

    message = models.ForeignKey(
        "conversations.Message",
        on_delete=models.CASCADE,
        related_name="commitments",
        verbose_name=_("message"),
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="commitments", verbose_name=_("customer")
    )
    case = models.ForeignKey(
        "conversations.Case",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="commitments",
        verbose_name=_("case"),
    )
    text = models.TextField(_("what was promised"), max_length=1000)
    due_on = models.DateField(_("due on"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=CommitmentStatus.choices, default=CommitmentStatus.OPEN
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="commitments_created",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"))
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="commitments_closed",
        verbose_name=_("closed by"),
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    close_note = models.CharField(_("closing note"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("commitment")
        verbose_name_plural = _("commitments")
        indexes = [
            # The pinned box: a customer's open ones.
            models.Index(fields=["customer", "status"], name="commitment_customer_status"),
            # The supervisors' list: open ones by due date.
            models.Index(fields=["status", "due_on"], name="commitment_status_due"),
        ]

    def __str__(self):
        return self.text[:80]

    @property
    def is_open(self) -> bool:
        return self.status == CommitmentStatus.OPEN
