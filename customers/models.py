from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class IdentityKind(models.TextChoices):
    EMAIL = "email", _("Email")
    # WhatsApp, SMS and voice all reach a person through the same E.164 number.
    PHONE = "phone", _("Phone")
    FACEBOOK = "facebook", _("Facebook (PSID)")
    INSTAGRAM = "instagram", _("Instagram (IGSID)")
    TWITTER = "twitter", _("X / Twitter")
    TELEGRAM = "telegram", _("Telegram")
    WEBCHAT = "webchat", _("Website chat")
    API = "api", _("API")
    # A WhatsApp user who hides their phone number behind a username: Meta's
    # business-scoped user id ("US.13491208655302741918"), the same for every
    # number of our business portfolio, and the only handle we get for them.
    WHATSAPP_BSUID = "whatsapp_bsuid", _("WhatsApp user ID (no phone number)")


class Customer(models.Model):
    name = models.CharField(max_length=200, blank=True, verbose_name=_("name"))
    attributes = models.JSONField(default=dict, blank=True, verbose_name=_("attributes"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))

    # A customer under legal hold (litigation, an authority's request) cannot be erased.
    legal_hold = models.BooleanField(_("legal hold"), default=False)
    legal_hold_reason = models.TextField(_("legal hold reason"), blank=True)
    # Set by privacy's erasure: the record stays (its cases count in the KPIs), its content went.
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The other system's id an import keeps (privacy.importing): a re-run finds its
            # customers by it, one indexed lookup per batch instead of a scan of the table.
            models.Index(models.F("attributes__external_id"), name="customer_external_id"),
        ]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self):
        return self.name or f"Customer #{self.pk}"

    @property
    def first_name(self) -> str:
        return (self.name or "").split(" ")[0]


class Identity(models.Model):
    """One address a customer reaches us from. (kind, address) is one person."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="identities", verbose_name=_("customer")
    )
    kind = models.CharField(max_length=20, choices=IdentityKind.choices, verbose_name=_("kind"))
    address = models.CharField(max_length=320, verbose_name=_("address"))
    display_name = models.CharField(max_length=200, blank=True, verbose_name=_("display name"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "address"], name="identity_kind_address_unique")
        ]
        verbose_name_plural = _("identities")
        verbose_name = _("identity")

    def __str__(self):
        return f"{self.kind}:{self.address}"


class CustomerMerge(models.Model):
    """Who merged which customer into which, and what moved: merges are audited."""

    survivor = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="merges", verbose_name=_("survivor")
    )
    merged_customer_id = models.BigIntegerField(verbose_name=_("merged customer id"))
    merged_snapshot = models.JSONField(default=dict, verbose_name=_("merged snapshot"))
    moved = models.JSONField(default=dict, verbose_name=_("moved"))
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("merged by"),
    )
    merged_at = models.DateTimeField(auto_now_add=True, verbose_name=_("merged at"))
    # Set when the merge was undone (privacy's unmerge): `moved` says what went back.
    unmerged_at = models.DateTimeField(_("unmerged at"), null=True, blank=True)
    unmerged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("unmerged by"),
    )

    class Meta:
        ordering = ["-merged_at"]
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")

    def __str__(self):
        return f"#{self.merged_customer_id} -> #{self.survivor_id}"
