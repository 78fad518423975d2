import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from channels_adapters.models import Channel
from conversations.models import Author, Case, Direction, Message, Team
from customers.models import Identity
from customers.services import customer_create
from helpdesk import roles


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"agent{n}")
    first_name = factory.Sequence(lambda n: f"Agent{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pass-word-123")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create:
            group, _ = Group.objects.get_or_create(name=extracted or roles.AGENTS)
            self.groups.add(group)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel

    kind = "api"
    name = factory.Sequence(lambda n: f"API channel {n}")
    credentials = factory.LazyFunction(
        lambda: {"secret": "s3cret-api-key", "callback_url": "http://127.0.0.1:9/unused"}
    )


class CustomerFactory(factory.django.DjangoModelFactory):
    """Goes through customer_create so every customer has their one thread."""

    class Meta:
        model = "customers.Customer"

    name = factory.Faker("name")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return customer_create(**kwargs)


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identity

    customer = factory.SubFactory(CustomerFactory)
    kind = "email"
    address = factory.Sequence(lambda n: f"customer{n}@example.com")


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    thread = factory.LazyAttribute(lambda o: CustomerFactory().thread)
    opened_at = factory.LazyFunction(timezone.now)
    origin_channel = factory.SubFactory(ChannelFactory)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    case = factory.SubFactory(CaseFactory)
    thread = factory.LazyAttribute(lambda o: o.case.thread)
    channel = factory.LazyAttribute(lambda o: o.case.origin_channel)
    direction = Direction.IN
    author = Author.CUSTOMER
    body = factory.Faker("sentence")
    created_at = factory.LazyFunction(timezone.now)


def provider_accepts(message, *, at=None, status="sent"):
    """The provider's callback for our message (the API channel echoes our id): it was accepted.

    Through the real status path, so the case counts the reply as the core does.
    """
    from conversations.statuses import message_status_update

    message_status_update(
        channel=message.channel,
        external_id=f"provider-{message.pk}",
        status=status,
        at=at,
        message_id=message.pk,
    )
    message.refresh_from_db()
    return message
