from django.db.models import QuerySet

from conversations.models import Case, Message, Thread


def thread_messages(*, thread: Thread) -> QuerySet[Message]:
    """The customer's whole timeline, every channel and every case, oldest first."""
    return (
        Message.objects.filter(thread=thread)
        .select_related("channel", "author_user", "identity")
        .order_by("created_at", "id")
    )


def case_open_for_thread(*, thread: Thread) -> Case | None:
    return Case.objects.filter(thread=thread).exclude(status="resolved").first()
