"""Reads of commitments. Who may see or act on one is asked of conversations/visibility.py:

- an agent sees a commitment when they may see its customer and the message it marks
  (so the agent on the phone sees what the social team promised, as they see that
  conversation on the customer's thread, but never a promise noted internally);
- an agent acts on it (marks, fulfils, withdraws) only on a case they may see.
"""

from __future__ import annotations

from datetime import date

from django.db.models import BooleanField, Case, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from commitments.models import Commitment, CommitmentStatus
from conversations import visibility
from conversations.models import Message
from helpdesk.roles import user_is_agent

LIST_LIMIT = 200


def commitments_visible_to(*, user, commitments: QuerySet[Commitment] | None = None) -> QuerySet[Commitment]:
    commitments = Commitment.objects.all() if commitments is None else commitments
    if not user_is_agent(user):
        return commitments.none()
    if visibility.user_sees_everything(user):
        return commitments
    # The customer first (as the inbox reaches a thread), then the message on their thread.
    seen = visibility.messages_visible_to(
        user=user, messages=Message.objects.filter(pk=OuterRef("message_id"))
    )
    customers = visibility.customers_visible_to(user=user).values("pk")
    return commitments.filter(Exists(seen), customer_id__in=customers)


def commitment_for_agent(*, user, pk: int) -> Commitment | None:
    return (
        commitments_visible_to(user=user, commitments=Commitment.objects.filter(pk=pk))
        .select_related("case", "message", "customer")
        .first()
    )


def message_for_agent(*, user, pk: int) -> Message | None:
    """A message to mark: on a customer this user may see, and one they may read."""
    customers = visibility.customers_visible_to(user=user).values("pk")
    messages = Message.objects.filter(pk=pk, thread__customer_id__in=customers)
    return visibility.messages_visible_to(user=user, messages=messages).select_related("case").first()


def commitment_actable(*, user, commitment: Commitment) -> bool:
    """May this user fulfil or withdraw it: the case must be theirs to see (no query once loaded)."""
    if commitment.case_id is not None:
        return visibility.case_visible(user=user, case=commitment.case)
    return visibility.message_visible(user=user, message=commitment.message)


def message_markable(*, user, message: Message) -> bool:
    """May this user mark the message as a commitment: on a case they may see."""
    if message.case_id is not None:
        return visibility.case_visible(user=user, case=message.case)
    return visibility.message_visible(user=user, message=message)


def _with_past_due(commitments: QuerySet[Commitment], today: date) -> QuerySet[Commitment]:
    return commitments.annotate(
        past_due=Case(
            When(Q(status=CommitmentStatus.OPEN, due_on__lt=today), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    )


def customer_open_commitments(*, user, customer_id: int, today: date | None = None) -> list[Commitment]:
    """The pinned box of a case and of the customer sidebar: past due first, then by due date."""
    today = today or timezone.localdate()
    open_ones = Commitment.objects.filter(customer_id=customer_id, status=CommitmentStatus.OPEN)
    # Most customers have none: a plain look at the index answers that, instead of
    # building and running the visibility-filtered query (13% of the case page's CPU).
    if not open_ones.exists():
        return []
    rows = commitments_visible_to(user=user, commitments=open_ones)
    rows = _with_past_due(rows, today).select_related("case", "created_by", "message__channel")
    rows = rows.defer(
        "message__channel__credentials", "message__html", "message__meta", "message__attachments"
    )
    rows = list(rows.order_by("-past_due", F("due_on").asc(nulls_last=True), "created_at", "pk"))
    for row in rows:
        # The buttons show only where the agent may use them (the case is theirs).
        row.actable = commitment_actable(user=user, commitment=row)
    return rows


def commitments_list(
    *,
    user,
    status: str = CommitmentStatus.OPEN,
    team_id: int | None = None,
    created_by_id: int | None = None,
    past_due_only: bool = False,
    query: str = "",
    today: date | None = None,
    limit: int = LIST_LIMIT,
) -> list[Commitment]:
    """The supervisors' list: past due first, then by due date (none last), oldest first."""
    today = today or timezone.localdate()
    rows = commitments_visible_to(user=user)
    if status:
        rows = rows.filter(status=status)
    if team_id:
        rows = rows.filter(case__team_id=team_id)
    if created_by_id:
        rows = rows.filter(created_by_id=created_by_id)
    if past_due_only:
        rows = rows.filter(status=CommitmentStatus.OPEN, due_on__lt=today)
    if query:
        rows = rows.filter(Q(text__icontains=query) | Q(customer__name__icontains=query))
    rows = _with_past_due(rows, today).select_related(
        "customer", "case__team", "case__assignee", "created_by", "closed_by", "message__channel"
    )
    rows = rows.defer(
        "message__channel__credentials", "message__html", "message__meta", "message__attachments"
    )
    return list(rows.order_by("-past_due", F("due_on").asc(nulls_last=True), "created_at", "pk")[:limit])
