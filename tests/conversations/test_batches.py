"""Sends in batches (conversations/batches.py): one claim, several sends, each outcome its own."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_adapters.base import Sender
from conversations import batches, delivery, statuses, tasks
from conversations.models import DeliveryAttempt, Message
from conversations.services import receive_inbound, send_reply
from tests.factories import ChannelFactory, UserFactory
from tests.provider_server import Reply


def _api_channel(provider):
    return ChannelFactory(credentials={"secret": "api-secret", "callback_url": f"{provider.url}/callback"})


def _queued(channel, texts, monkeypatch):
    """Replies queued with no task of their own yet: the test decides who sends them."""
    monkeypatch.setattr(tasks.message_deliver, "delay", lambda *a, **k: None)
    case = receive_inbound(
        channel=channel, sender=Sender("email", "ana@example.com"), external_id="in-1", text="hi"
    ).message.case
    agent = UserFactory()
    return [send_reply(case=case, author_user=agent, body=text) for text in texts]


@pytest.mark.django_db
def test_a_failed_send_in_a_batch_is_that_message_only(provider, monkeypatch):
    provider.script(
        Reply(200, {"external_id": "remote-1"}),
        Reply(422, {"error": "unknown recipient"}),
        Reply(200, {"external_id": "remote-3"}),
    )
    first, second, third = _queued(_api_channel(provider), ["one", "two", "three"], monkeypatch)

    outcomes = batches.messages_deliver_due(message_id=first.pk, limit=10)

    assert {pk: o.outcome for pk, o in outcomes.items()} == {
        first.pk: "sent",
        second.pk: "failed",
        third.pk: "sent",
    }
    assert [r.json()["text"] for r in provider.requests] == ["one", "two", "three"]  # oldest first
    first.refresh_from_db(), second.refresh_from_db(), third.refresh_from_db()
    assert (first.status, first.external_id) == ("sent", "remote-1")
    assert (third.status, third.external_id) == ("sent", "remote-3")
    assert second.status == "failed" and "unknown recipient" in second.error
    assert second.send_claimed_at is None and third.send_claimed_at is None
    attempts = DeliveryAttempt.objects.filter(message__in=[first, second, third]).order_by("message_id")
    assert [a.outcome for a in attempts] == ["sent", "failed", "sent"]
    # The task of a message a batch took finds nothing left to do.
    assert batches.messages_deliver_due(message_id=third.pk, limit=10)[third.pk].outcome == "skipped"
    assert len(provider.requests) == 3


@pytest.mark.django_db
def test_a_retry_in_a_batch_keeps_its_own_backoff(provider, monkeypatch, settings):
    settings.HELPDESK = {**settings.HELPDESK, "OUTBOUND_BACKOFF_SECONDS": 30.0}
    provider.script(Reply(503, {"error": "busy"}), Reply(200, {"external_id": "remote-2"}))
    first, second = _queued(_api_channel(provider), ["one", "two"], monkeypatch)

    outcomes = batches.messages_deliver_due(message_id=second.pk, limit=10)

    assert outcomes[first.pk].outcome == "retry" and outcomes[first.pk].retry_in == 30.0
    assert outcomes[second.pk].outcome == "sent"
    first.refresh_from_db()
    assert first.status == "queued" and first.next_attempt_at > timezone.now() + timedelta(seconds=20)
    # Waiting for its backoff: not due for the next batch.
    assert batches.messages_deliver_due(message_id=second.pk, limit=10) == {
        second.pk: delivery.DeliveryOutcome("skipped")
    }
    assert len(provider.requests) == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_batches_at_once_send_each_message_once(provider, monkeypatch):
    provider.script(Reply(200, {}, delay=0.01))
    replies = _queued(_api_channel(provider), [f"reply {n}" for n in range(24)], monkeypatch)
    barrier = threading.Barrier(2)
    outcomes, errors = [], []

    def worker(order):
        from django.db import connection

        barrier.wait()
        try:
            for reply in order:  # every message's own task, small batches
                outcomes.extend(
                    o.outcome
                    for o in batches.messages_deliver_due(message_id=reply.pk, worker="w", limit=5).values()
                )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(o,)) for o in (replies, replies[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    sent = Counter(r.json()["text"] for r in provider.requests)
    assert sent == Counter(f"reply {n}" for n in range(24))  # each once, none missing
    assert Counter(outcomes)["sent"] == 24
    assert set(Message.objects.filter(pk__in=[r.pk for r in replies]).values_list("status", flat=True)) == {
        "sent"
    }
    assert DeliveryAttempt.objects.filter(message__in=replies).count() == 24


@pytest.mark.django_db
def test_a_worker_killed_mid_batch_leaves_its_waiting_sends_due_not_unknown(
    provider, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    replies = _queued(_api_channel(provider), ["one", "two", "three"], monkeypatch)
    monkeypatch.setattr(tasks.message_deliver, "delay", lambda pk: queued.append(pk))
    # The claim committed, then the node died before any network call returned.
    started = timezone.now()
    claimed = batches._claim_due(message_id=replies[0].pk, now=started, worker="celery@a", limit=10)
    assert [outcome for _, _, outcome in claimed] == ["pending", "waiting", "waiting"]

    with django_capture_on_commit_callbacks(execute=True):
        result = delivery.outbound_recover(worker="celery@a", started_at=started + timedelta(seconds=1))

    assert result == {"requeued": 2, "interrupted": 1, "resent": 0}
    states = {m.pk: m for m in Message.objects.filter(pk__in=[r.pk for r in replies])}
    assert states[replies[0].pk].status == "unknown"  # it may be on the customer's phone
    for reply in replies[1:]:
        message = states[reply.pk]
        assert (message.status, message.send_claimed_at, message.attempts) == ("queued", None, 0)
        assert not DeliveryAttempt.objects.filter(message=message).exists()  # never an attempt
    assert sorted(queued) == [r.pk for r in replies[1:]]
    assert provider.requests == []


@pytest.mark.django_db
def test_waiting_claims_past_the_claim_timeout_are_given_back_by_the_beat(
    provider, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    replies = _queued(_api_channel(provider), ["one", "two"], monkeypatch)
    monkeypatch.setattr(tasks.message_deliver, "delay", lambda pk: queued.append(pk))
    long_ago = timezone.now() - timedelta(hours=1)
    batches._claim_due(message_id=replies[0].pk, now=long_ago, worker="celery@gone", limit=10)

    with django_capture_on_commit_callbacks(execute=True):
        result = delivery.outbound_redrive()

    assert result["interrupted"] == 1 and result["requeued"] >= 1
    second = Message.objects.get(pk=replies[1].pk)
    assert (second.status, second.send_claimed_at) == ("queued", None)
    assert replies[1].pk in queued
    # A given-back claim cannot start any more: its batch, if still alive, skips it.
    assert batches._attempt_start(attempt_id=0) is False


@pytest.mark.django_db
def test_a_callback_settling_a_waiting_claim_keeps_it_from_being_sent(provider, monkeypatch):
    """A late callback of an earlier try (an agent confirmed a resend) arrives while
    the resend waits for its turn in a batch: the provider has it, it is not sent again."""
    channel = _api_channel(provider)
    first, second = _queued(channel, ["one", "two"], monkeypatch)
    claimed = batches._claim_due(message_id=first.pk, now=timezone.now(), worker="w", limit=10)
    waiting = next(attempt for mid, attempt, _ in claimed if mid == second.pk)

    assert statuses.message_status_update(
        channel=channel, external_id="remote-earlier", status="delivered", message_id=second.pk
    )

    assert batches._attempt_start(attempt_id=waiting) is False
    second.refresh_from_db()
    assert (second.status, second.external_id, second.send_claimed_at) == (
        "delivered",
        "remote-earlier",
        None,
    )
    assert provider.requests == []


@pytest.mark.django_db
def test_a_batch_of_sms_keeps_its_query_budget(twilio_batch, django_assert_max_num_queries):
    """Per send: the attempt started, then in one transaction the thread and case
    locks, the message with its attempt (one statement); per batch: the claim and the
    messages read."""
    channel, replies = twilio_batch
    with django_assert_max_num_queries(2 + 6 * len(replies)):
        outcomes = batches.messages_deliver_due(message_id=replies[0].pk, limit=10)
    assert [o.outcome for o in outcomes.values()] == ["sent"] * len(replies)


@pytest.fixture
def twilio_batch(provider, settings, monkeypatch):
    from tests.channels_adapters.twilio_support import (
        OUR_NUMBER,
        message_resource,
        messages_path,
        twilio_channel,
    )

    settings.TWILIO_API_BASE_URL = provider.url
    channel = twilio_channel("sms")
    sids = [f"SMbatch{n}" for n in range(5)]
    provider.script(
        *(Reply(201, message_resource(sid, to="+14155550199", from_=OUR_NUMBER)) for sid in sids),
        path=messages_path(),
    )
    monkeypatch.setattr(tasks.message_deliver, "delay", lambda *a, **k: None)
    inbound = receive_inbound(
        channel=channel, sender=Sender("phone", "+14155550199"), external_id="SMin1", text="Refund?"
    )
    agent = UserFactory()
    replies = [
        send_reply(case=inbound.message.case, author_user=agent, body=f"Part {n}") for n in range(len(sids))
    ]
    return channel, replies
