"""Commitments' test data, on top of the shared factories."""

import factory
from django.utils import timezone

from commitments.models import Commitment
from tests.factories import MessageFactory


class CommitmentFactory(factory.django.DjangoModelFactory):
    """A commitment row as the service would write it (without its event line): for lists."""

    class Meta:
        model = Commitment

    message = factory.SubFactory(MessageFactory)
    customer = factory.LazyAttribute(lambda o: o.message.thread.customer)
    case = factory.LazyAttribute(lambda o: o.message.case)
    text = factory.Faker("sentence")
    created_at = factory.LazyFunction(timezone.now)
