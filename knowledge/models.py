from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Language(models.TextChoices):
    ES = "es", _("Spanish")
    EN = "en", _("English")


class Category(models.Model):
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=120)
    language = models.CharField(_("language"), max_length=5, choices=Language.choices)
    description = models.CharField(_("description"), max_length=300, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["language", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["language", "slug"], name="kb_category_slug_per_language")
        ]

    def __str__(self):
        return f"{self.name} ({self.language})"

    def get_absolute_url(self):
        return reverse("knowledge:category", kwargs={"lang": self.language, "slug": self.slug})


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")


class Article(models.Model):
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200)
    language = models.CharField(_("language"), max_length=5, choices=Language.choices, db_index=True)
    # Translations share one group: the first article of the group is its own group.
    translation_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="translations",
        verbose_name=_("translation of"),
    )
    category = models.ForeignKey(
        Category,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="articles",
        verbose_name=_("category"),
    )
    summary = models.CharField(
        _("summary"),
        max_length=300,
        blank=True,
        help_text=_("What the bot answers; empty: the body's start."),
    )
    body = models.TextField(_("body"), help_text=_("Markdown."))
    html = models.TextField(editable=False, blank=True)
    keywords = models.CharField(_("keywords"), max_length=500, blank=True, help_text=_("Comma separated."))
    status = models.CharField(
        _("status"), max_length=10, choices=ArticleStatus.choices, default=ArticleStatus.DRAFT, db_index=True
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("author")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    view_count = models.PositiveIntegerField(_("views"), default=0)
    helpful_yes = models.PositiveIntegerField(_("helpful"), default=0)
    helpful_no = models.PositiveIntegerField(_("not helpful"), default=0)
    # Maintained by knowledge.search.articles_index: weighted tsvectors (PostgreSQL,
    # GIN-indexed by migrations 0002 and 0003) and the unaccented title + keywords that
    # trigram similarity reads so typos still match.
    search_vector = SearchVectorField(null=True, editable=False)
    # Title (A) and keywords (B) alone: a loose (any word) match here is cheap to rank even
    # over thousands of articles; the body counts through search_vector's all-words match.
    title_vector = SearchVectorField(null=True, editable=False)
    search_terms = models.TextField(blank=True, editable=False)

    class Meta:
        verbose_name = _("article")
        verbose_name_plural = _("articles")
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["language", "slug"], name="kb_article_slug_per_language")
        ]
        indexes = [models.Index(fields=["language", "status"])]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("knowledge:article", kwargs={"lang": self.language, "slug": self.slug})

    @property
    def public_url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.get_absolute_url()

    @property
    def is_published(self) -> bool:
        return self.status == ArticleStatus.PUBLISHED


class BotSession(models.Model):
    """The bot's part in one case: what it answered and how it ended (the dashboard's figures)."""

    class State(models.TextChoices):
        AWAITING = "awaiting", _("Waiting for the customer's feedback")
        RESOLVED = "resolved", _("Resolved by the bot")
        HANDED_OFF = "handed_off", _("Handed over to a person")

    case = models.OneToOneField("conversations.Case", on_delete=models.CASCADE, related_name="bot_session")
    channel = models.ForeignKey("channels_adapters.Channel", null=True, on_delete=models.SET_NULL)
    state = models.CharField(max_length=12, choices=State.choices)
    language = models.CharField(max_length=5, blank=True)
    question = models.TextField(blank=True)
    article = models.ForeignKey(Article, null=True, blank=True, on_delete=models.SET_NULL)
    score = models.FloatField(null=True, blank=True)
    answers = models.PositiveSmallIntegerField(default=0)
    handoff_reason = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("bot conversation")
        verbose_name_plural = _("bot conversations")

    def __str__(self):
        return f"Bot on case #{self.case_id}: {self.state}"


class BotTurn(models.Model):
    """One customer message the bot was asked to consider, and what it did with it.

    Written on the inbound path (knowledge.receivers) when the bot could be
    concerned, done by a worker (knowledge.tasks.bot_message_turn, bot_messages_turn). The row is
    the bot's memory of which messages it has handled: a task delivered twice,
    or run after a later message's task already took this turn in order, finds
    it done and does nothing, so a customer is never answered twice.
    """

    class Outcome(models.TextChoices):
        ANSWERED = "answered", _("Answered")
        RESOLVED = "resolved", _("Resolved")
        HANDED_OFF = "handed_off", _("Handed over")
        SILENT = "silent", _("Stayed silent")
        FAILED = "failed", _("Failed")
        STALE = "stale", _("Too late to answer")

    message = models.OneToOneField(
        "conversations.Message", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("bot turn")
        verbose_name_plural = _("bot turns")
        indexes = [
            # Only the pending few: the worker's "earlier turns first" and the redrive read them.
            models.Index(
                fields=["queued_at"], condition=models.Q(done_at__isnull=True), name="kb_botturn_pending"
            ),
            # The hourly prune's range; written once per row (queued_at never changes).
            models.Index(fields=["queued_at"], name="kb_botturn_queued"),
        ]

    def __str__(self):
        return f"Bot turn on message #{self.message_id}: {self.outcome or 'pending'}"


class UnansweredQuestion(models.Model):
    """A customer question the bot found no confident article for: what the KB is missing."""

    case = models.ForeignKey("conversations.Case", null=True, on_delete=models.SET_NULL)
    language = models.CharField(max_length=5)
    text = models.CharField(max_length=500)
    # Lower-cased, unaccented, squeezed: the same question asked twice groups together.
    normalized = models.CharField(max_length=500, db_index=True)
    best_score = models.FloatField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("unanswered question")
        verbose_name_plural = _("unanswered questions")

    def __str__(self):
        return self.text[:80]


class SearchWord(models.Model):
    """Every word of the published articles, unaccented: a customer's typo is corrected
    to the nearest one by trigram similarity before the full-text search."""

    word = models.CharField(max_length=60, primary_key=True)

    def __str__(self):
        return self.word
