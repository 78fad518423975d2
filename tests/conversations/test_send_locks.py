"""A send recording its outcome and a status change on its case, at once, on two connections."""

import threading
import time

import pytest
from django.db import connection, transaction

from channels_adapters.base import Sender
from conversations import tasks
from conversations.models import Case, Message
from conversations.services import case_lock_for_message, receive_inbound, send_reply, system_event_add
from tests.factories import ChannelFactory, UserFactory


@pytest.mark.django_db(transaction=True)
def test_a_send_waiting_for_the_case_lets_the_status_change_holding_it_finish(monkeypatch):
    monkeypatch.setattr(tasks.message_deliver, "delay", lambda *a, **k: None)
    case = receive_inbound(
        channel=ChannelFactory(), sender=Sender("email", "ana@example.com"), external_id="in-1", text="hi"
    ).message.case
    reply = send_reply(case=case, author_user=UserFactory(), body="On its way")
    errors = []

    def send_outcome():
        try:
            with transaction.atomic():  # the thread, then the case: waits for the case below
                case_lock_for_message(message=Message.objects.get(pk=reply.pk))
        except Exception as exc:  # noqa: BLE001 - the assertion shows it
            errors.append(exc)
        finally:
            connection.close()

    with transaction.atomic():  # a status change: the case locked, then its line in the timeline
        Case.objects.select_for_update().get(pk=case.pk)
        sender = threading.Thread(target=send_outcome)
        sender.start()
        time.sleep(0.5)  # the send holds the thread's lock and waits for the case
        system_event_add(thread=case.thread, case=case, text="Case resolved")
    sender.join(timeout=10)

    assert not sender.is_alive() and errors == []  # no "deadlock detected" on either side
