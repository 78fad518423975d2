"""@mentions in internal notes: usernames match whatever their capitals."""

import pytest

from conversations.cases import case_note_add
from conversations.models import Mention
from tests.factories import CaseFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("typed", ["@MariaG", "@mariag", "@MARIAG"])
def test_mention_of_a_username_with_capitals_notifies_them(typed):
    author = UserFactory(username="alex")
    maria = UserFactory(username="MariaG")
    case = CaseFactory()

    case_note_add(case=case, author_user=author, body=f"{typed} can you check the refund?")

    assert list(Mention.objects.values_list("user_id", flat=True)) == [maria.pk]


def test_the_author_mentioning_themselves_with_other_capitals_is_not_notified():
    author = UserFactory(username="Alex")
    case = CaseFactory()

    case_note_add(case=case, author_user=author, body="@alex note to self")

    assert not Mention.objects.exists()
