"""WhatsApp Cloud API through the real webhook URL with Meta's signatures; media
fetched and replies sent through the Graph API played by a local server."""

import hashlib

import pytest
from django.core.exceptions import ValidationError

from channels_adapters.base import TransientSendError, hmac_sha256_hex
from channels_adapters.meta.selectors import window_state
from channels_adapters.meta.services import whatsapp_media_fetch
from channels_adapters.models import InboundEvent
from conversations.delivery import message_deliver
from conversations.models import Author, DeliveryStatus, Direction, Message
from conversations.services import send_reply
from customers.models import Customer, Identity
from tests.channels_adapters.meta_support import (
    VERIFY_TOKEN,
    customer_wrote,
    deliver_meta,
    graph_error,
    meta_headers,
    whatsapp_channel,
)
from tests.conftest import wait_for
from tests.factories import ChannelFactory, CustomerFactory, MessageFactory, UserFactory
from tests.provider_server import Reply
from tests.webhooks import check_webhook, fixture_bytes

PHONE = "+34612345678"
IMAGE = b"JPEG:broken-box"
PDF = b"%PDF-1.7 invoice 4411"


@pytest.fixture
def channel(db):
    return whatsapp_channel()


@pytest.fixture
def graph(graph, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # fetched media is stored: keep it out of the checkout
    return graph


def _script_media(graph):
    for media_id, path, content, mime in [
        ("1003383421387256", "/files/box", IMAGE, "image/jpeg"),
        ("1003383421387257", "/files/invoice", PDF, "application/pdf"),
    ]:
        info = {
            "messaging_product": "whatsapp",
            "url": f"{graph.url}{path}?ext=1&hash=abc",
            "mime_type": mime,
            "sha256": hashlib.sha256(content).hexdigest(),
            "file_size": len(content),
            "id": media_id,
        }
        graph.script(Reply(200, info), path=f"/v23.0/{media_id}")
        graph.script(Reply(200, content, headers={"Content-Type": mime}), path=path)
    # The voice note's media id has expired at Meta.
    graph.script(
        Reply(
            400, graph_error(100, "Unsupported get request. Object with ID '1003383421387258' does not exist")
        ),
        path="/v23.0/1003383421387258",
    )


def _out(channel, external_id, status=DeliveryStatus.SENT):
    inbound = Message.objects.filter(channel=channel).first()
    return MessageFactory(
        case=inbound.case,
        thread=inbound.thread,
        channel=channel,
        identity=inbound.identity,
        direction=Direction.OUT,
        author=Author.AGENT,
        external_id=external_id,
        status=status,
    )


# Webhook verification ------------------------------------------------------


@pytest.mark.django_db
def test_handshake_and_bad_signature(client, channel):
    ok = client.get(
        channel.webhook_path,
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
    )
    assert ok.status_code == 200 and ok.content == b"42"
    wrong = client.get(
        channel.webhook_path, {"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "42"}
    )
    assert wrong.status_code == 403
    body = fixture_bytes("whatsapp", "text.json")
    check_webhook(client, channel, body, headers=meta_headers(body, "not-our-secret"), expect_status=403)
    check_webhook(client, channel, body, headers={}, expect_status=403)
    assert InboundEvent.objects.count() == 0 and Message.objects.count() == 0


# Inbound -----------------------------------------------------------------


@pytest.mark.django_db
def test_text_message_makes_a_phone_customer_named_from_contacts(client, channel):
    _, [event] = deliver_meta(client, channel, "text.json")
    assert event.status == InboundEvent.Status.PROCESSED
    message = Message.objects.get()
    assert message.body == "Hola, ¿dónde está mi pedido?"
    assert (message.identity.kind, message.identity.address) == ("phone", PHONE)
    assert message.thread.customer.name == "Lucía Pérez"
    assert message.external_id.startswith("wamid.") and message.provider_timestamp.year == 2025


@pytest.mark.django_db
def test_duplicate_wamid_is_one_message(client, channel):
    deliver_meta(client, channel, "text.json")
    _, [again] = deliver_meta(client, channel, "text.json")
    assert Message.objects.count() == 1 and again.summary == {**again.summary, "duplicates": 1, "messages": 0}


@pytest.mark.django_db
def test_several_entries_and_messages_land_in_provider_time_order(client, channel):
    _, [event] = deliver_meta(client, channel, "batch.json")
    assert event.summary["messages"] == 3
    assert list(Message.objects.order_by("pk").values_list("body", flat=True)) == ["first", "second", "third"]
    assert set(Customer.objects.values_list("name", flat=True)) == {"Lucía Pérez", "Bo Chen"}
    bo = Identity.objects.get(address="+14155550199")
    assert Message.objects.filter(identity=bo).count() == 2


@pytest.mark.django_db
def test_whatsapp_customer_then_api_message_from_the_same_number_is_one_thread(client, channel):
    deliver_meta(client, channel, "text.json")
    api = ChannelFactory(credentials={"secret": "api-secret", "callback_url": "http://127.0.0.1:9/"})
    body = (
        b'{"external_id": "crm-1", "from": {"phone": "+34 612 34 56 78"}, "text": "Same person, other way"}'
    )
    check_webhook(client, api, body, headers={"X-Signature": "sha256=" + hmac_sha256_hex("api-secret", body)})
    whatsapp, other = Message.objects.order_by("pk")
    assert other.channel == api and other.identity == whatsapp.identity
    assert other.thread_id == whatsapp.thread_id and other.case_id == whatsapp.case_id
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_locations_buttons_lists_reactions_contacts_and_unsupported_are_rendered(client, channel):
    deliver_meta(client, channel, "text.json")
    ours = _out(channel, "wamid.our.answer.1")
    _, [event] = deliver_meta(client, channel, "kinds.json")
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    location = Message.objects.get(external_id="wamid.kind.location")
    assert "Puerta del Sol, Madrid" in location.body and "maps.google.com/?q=40.4168,-3.7038" in location.body
    button = Message.objects.get(external_id="wamid.kind.button")
    assert button.body == "Yes, call me" and button.meta["button_payload"] == "CALLBACK_YES"
    assert button.meta["reply_to"] == "wamid.our.template.1"
    listed = Message.objects.get(external_id="wamid.kind.interactive")
    assert listed.body == "Refund" and listed.meta["interactive"] == {"type": "list_reply", "id": "refund"}
    sticker = Message.objects.get(external_id="wamid.kind.sticker")
    assert sticker.kind == "media" and sticker.attachments[0]["media_id"] == "1003383421387299"
    contact = Message.objects.get(external_id="wamid.kind.contacts")
    assert "Ana Silva +351 912 345 678" in contact.body
    unsupported = Message.objects.get(external_id="wamid.kind.unsupported")
    assert "type we cannot show: unsupported, Message type unknown" in unsupported.body
    ours.refresh_from_db()
    assert ours.meta["reaction"]["emoji"] == "👍"
    assert not Message.objects.filter(external_id="wamid.kind.reaction").exists()


@pytest.mark.django_db
def test_statuses_out_of_order_end_at_read_and_failed_keeps_the_error(client, channel):
    deliver_meta(client, channel, "text.json")
    one, two, three = (_out(channel, f"wamid.out.{n}") for n in (1, 2, 3))
    _, [event] = deliver_meta(client, channel, "statuses.json")
    assert event.summary["statuses"] == 4
    one.refresh_from_db()
    two.refresh_from_db()
    assert one.status == DeliveryStatus.READ and one.read_at.year == 2025
    assert two.status == DeliveryStatus.DELIVERED
    deliver_meta(client, channel, "status_failed.json")
    three.refresh_from_db()
    assert three.status == DeliveryStatus.FAILED
    assert "only an approved template can be sent now" in three.error
    assert "131047" in three.error


@pytest.mark.django_db
def test_other_fields_and_other_numbers_are_ignored(client, channel):
    _, [event] = deliver_meta(client, channel, "unknown_event.json")
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.summary["ignored"] == ["message_template_status_update", "messages:other_phone_number"]
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_media_given_by_id_is_fetched_and_stored(client, channel, graph, tmp_path):
    _script_media(graph)
    deliver_meta(client, channel, "media.json")
    image = Message.objects.get(external_id="wamid.media.image.1")
    assert image.body == "The box arrived broken" and image.kind == "media"
    assert image.attachments[0]["media_id"] == "1003383421387256" and "path" not in image.attachments[0]

    attachments = whatsapp_media_fetch(message_id=image.pk)
    stored = attachments[0]
    assert stored["content_type"] == "image/jpeg" and stored["size"] == len(IMAGE)
    assert (tmp_path / stored["path"]).read_bytes() == IMAGE
    fetch, download = graph.requests
    assert (fetch.method, fetch.path) == ("GET", "/v23.0/1003383421387256")
    assert fetch.headers["authorization"] == download.headers["authorization"] == "Bearer EAAG-wa-token"
    image.refresh_from_db()
    assert image.attachments == attachments

    document = Message.objects.get(external_id="wamid.media.document.1")
    [pdf] = whatsapp_media_fetch(message_id=document.pk)
    assert pdf["name"] == "invoice-4411.pdf" and pdf["path"].endswith("invoice-4411.pdf")

    # A media id Meta no longer has: the agent sees why, and nothing is retried.
    voice = Message.objects.get(external_id="wamid.media.voice.1")
    [lost] = whatsapp_media_fetch(message_id=voice.pk)
    assert "path" not in lost and "does not exist" in lost["error"] and lost["type"] == "voice"
    assert whatsapp_media_fetch(message_id=voice.pk) == [lost]


@pytest.mark.django_db
def test_media_with_a_wrong_checksum_is_not_kept(client, channel, graph):
    _script_media(graph)
    graph.script(
        Reply(200, b"JPEG:something-else", headers={"Content-Type": "image/jpeg"}), path="/files/box"
    )
    deliver_meta(client, channel, "media.json")
    image = Message.objects.get(external_id="wamid.media.image.1")
    with pytest.raises(TransientSendError, match="checksum"):
        whatsapp_media_fetch(message_id=image.pk, final=False)
    [kept] = whatsapp_media_fetch(message_id=image.pk, final=True)
    assert "path" not in kept and kept["error"]


def test_the_worker_fetches_media_after_the_webhook(live_worker, client, graph):
    channel = whatsapp_channel()
    _script_media(graph)
    body = fixture_bytes("whatsapp", "media.json")
    assert (
        client.post(
            channel.webhook_path, body, content_type="application/json", headers=meta_headers(body)
        ).status_code
        == 200
    )

    def fetched():
        image = Message.objects.filter(external_id="wamid.media.image.1").first()
        return image if image and image.attachments[0].get("path") else None

    image = wait_for(fetched)
    assert image.attachments[0]["size"] == len(IMAGE)
    wait_for(lambda: Message.objects.get(external_id="wamid.media.voice.1").attachments[0].get("error"))


# Outbound ----------------------------------------------------------------


@pytest.mark.django_db
def test_reply_inside_the_window_is_a_text_message(channel, graph):
    inbound = customer_wrote(channel, "phone", PHONE, hours_ago=1)
    graph.script(
        Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": "34612345678", "wa_id": "34612345678"}],
                "messages": [{"id": "wamid.sent.1"}],
            },
        )
    )
    reply = send_reply(case=inbound.case, author_user=UserFactory(), body="It ships tomorrow.")
    assert message_deliver(message_id=reply.pk).outcome == "sent"
    reply.refresh_from_db()
    assert reply.external_id == "wamid.sent.1" and reply.status == DeliveryStatus.SENT
    [request] = graph.requests
    assert (request.method, request.path) == ("POST", "/v23.0/106540352242922/messages")
    assert request.headers["authorization"] == "Bearer EAAG-wa-token"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "34612345678",
        "type": "text",
        "text": {"body": "It ships tomorrow.", "preview_url": False},
        # Echoed in the status webhooks: settles a send a crash cut short.
        "biz_opaque_callback_data": f"helpdesk-message-{reply.pk}",
    }


@pytest.mark.django_db
def test_window_closed_refuses_free_text_but_sends_a_template(channel, graph):
    inbound = customer_wrote(channel, "phone", PHONE, hours_ago=30)
    state = window_state(channel=channel, thread=inbound.thread)
    assert state["open"] is False and state["rule"] == "template_only" and state["templates"] is True
    with pytest.raises(ValidationError, match="only allows an approved template"):
        send_reply(case=inbound.case, author_user=UserFactory(), body="Are you still there?")
    with pytest.raises(ValidationError, match="needs a language"):
        send_reply(case=inbound.case, author_user=UserFactory(), body="", meta={"template": {"name": "x"}})
    assert graph.requests == [] and not Message.objects.filter(direction=Direction.OUT).exists()

    graph.script(
        Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "messages": [{"id": "wamid.tpl.1", "message_status": "accepted"}],
            },
        )
    )
    template = {"name": "order_update", "language": "es", "parameters": ["Lucía", "#4411"]}
    reply = send_reply(case=inbound.case, author_user=UserFactory(), body="", meta={"template": template})
    assert message_deliver(message_id=reply.pk).outcome == "sent"
    assert graph.requests[0].json() == {
        "biz_opaque_callback_data": f"helpdesk-message-{reply.pk}",
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "34612345678",
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "es"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "Lucía"}, {"type": "text", "text": "#4411"}],
                }
            ],
        },
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("reply", "outcome", "words"),
    [
        (Reply(400, graph_error(131047, "Re-engagement message")), "failed", "only an approved template"),
        (Reply(400, graph_error(131026, "Message undeliverable")), "failed", "may not be on WhatsApp"),
        (Reply(401, graph_error(190, "Error validating access token")), "failed", "expired or was revoked"),
        (
            Reply(400, graph_error(132001, "Template name does not exist in the translation")),
            "failed",
            "does not exist in this language",
        ),
        (Reply(400, graph_error(130429, "Rate limit hit")), "retry", "rate-limiting"),
        (
            Reply(400, graph_error(131056, "(Business Account, Consumer Account) pair rate limit hit")),
            "retry",
            "rate-limiting",
        ),
        (Reply(500, graph_error(131000, "Something went wrong")), "retry", "temporary problem"),
    ],
)
def test_graph_errors_are_retried_or_explained(channel, graph, reply, outcome, words):
    inbound = customer_wrote(channel, "phone", PHONE, hours_ago=1)
    graph.script(reply)
    message = send_reply(case=inbound.case, author_user=UserFactory(), body="Hello")
    assert message_deliver(message_id=message.pk).outcome == outcome
    message.refresh_from_db()
    assert words in message.error


@pytest.mark.django_db
def test_register_webhook_overrides_the_callback_of_the_business_account(graph, settings):
    from channels_adapters.registry import adapter_for

    settings.PUBLIC_BASE_URL = "https://help.acme.example"
    adapter = adapter_for("whatsapp")
    without = whatsapp_channel()
    with pytest.raises(NotImplementedError, match="waba_id"):
        adapter.register_webhook(without)
    channel = whatsapp_channel(waba_id="102290129340398")
    graph.script(Reply(200, {"success": True}))
    note = adapter.register_webhook(channel)
    assert note.endswith(f"https://help.acme.example/hooks/{channel.key}/.")
    [request] = graph.requests
    assert request.path == "/v23.0/102290129340398/subscribed_apps"
    assert request.json() == {
        "override_callback_uri": f"https://help.acme.example/hooks/{channel.key}/",
        "verify_token": VERIFY_TOKEN,
    }


@pytest.mark.django_db
def test_graph_unreachable_is_retried(channel, settings):
    settings.GRAPH_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    inbound = customer_wrote(channel, "phone", PHONE, hours_ago=1)
    message = send_reply(case=inbound.case, author_user=UserFactory(), body="Hello")
    assert message_deliver(message_id=message.pk).outcome == "retry"
    message.refresh_from_db()
    assert message.status == DeliveryStatus.QUEUED and "Could not reach Meta's Graph API" in message.error


@pytest.mark.django_db
def test_business_app_echo_is_ours_and_does_not_open_the_window(client, channel):
    deliver_meta(client, channel, "text.json")
    _, [event] = deliver_meta(client, channel, "smb_echo.json")
    assert event.summary["messages"] == 1
    echo = Message.objects.get(external_id="wamid.echo.app.1")
    assert echo.direction == Direction.OUT and echo.author == Author.AGENT and echo.meta["echo"] is True
    assert echo.identity.address == PHONE and echo.body == "Te llamo en 5 minutos"
    # The window counts from the customer's messages only (2025 here): still closed.
    assert window_state(channel=channel, thread=echo.thread)["rule"] == "template_only"


# Edits and revokes -------------------------------------------------------------

ORIGINAL = "wamid.HBgLMzQ2MTIzNDU2NzgVAgASGBQzQTdBNUE5QjQ1RkE4RTAzQjQ4NQA="


@pytest.mark.django_db
def test_edit_changes_the_original_and_keeps_the_previous_text(client, channel):
    deliver_meta(client, channel, "text.json")
    _, [event] = deliver_meta(client, channel, "edit.json")
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    [original] = Message.objects.all()  # no placeholder message for the edit
    assert original.external_id == ORIGINAL
    assert original.body == "Hola, ¿dónde está mi pedido 4411?"
    [before] = original.meta["edits"]
    assert before["text"] == "Hola, ¿dónde está mi pedido?"
    assert original.meta["edited_by"] == "customer" and original.meta["edited_at"].startswith("2025-11-20")
    # The second edit is of a message we never got: said so, nothing invented.
    assert event.summary["updates"] == 1
    [ignored] = event.summary["ignored"]
    assert ignored.startswith(
        "edit of unknown message wamid.HBgLMzQ2MTIzNDU2NzgVAgARGBJOT1RIRVJFMDAwMDAwMDAwMQA="
    )
    assert "reprocess" in ignored


@pytest.mark.django_db
def test_edited_caption_changes_the_media_message_and_its_file_stays(client, channel, graph):
    import json

    _script_media(graph)
    deliver_meta(client, channel, "media.json")
    payload = json.loads(fixture_bytes("whatsapp", "edit.json"))
    [first, second] = payload["entry"][0]["changes"][0]["value"]["messages"]
    second["edit"]["original_message_id"] = "wamid.media.image.1"
    payload["entry"][0]["changes"][0]["value"]["messages"] = [second]
    body = json.dumps(payload).encode()
    _, [event] = check_webhook(client, channel, body, headers=meta_headers(body))
    assert event.summary["updates"] == 1, event.summary
    image = Message.objects.get(external_id="wamid.media.image.1")
    assert image.body == "The box, again" and image.meta["edits"][0]["text"] == "The box arrived broken"
    assert len(image.attachments) == 1 and image.kind == "media"


@pytest.mark.django_db
def test_edit_of_a_message_not_yet_here_changes_it_when_the_event_is_reprocessed(client, channel):
    from channels_adapters.services import inbound_event_process

    _, [early] = deliver_meta(client, channel, "edit.json")
    assert Message.objects.count() == 0 and "edit of unknown message" in early.summary["ignored"][0]
    deliver_meta(client, channel, "text.json")
    InboundEvent.objects.filter(pk=early.pk).update(status=InboundEvent.Status.PENDING)
    inbound_event_process(event_id=early.pk)
    assert Message.objects.get().body == "Hola, ¿dónde está mi pedido 4411?"


@pytest.mark.django_db
def test_edit_delivered_as_unsupported_is_recorded_not_shown(client, channel):
    # Meta's documented stopgap: an edit arrives as "unsupported" with no original id.
    deliver_meta(client, channel, "text.json")
    _, [event] = deliver_meta(client, channel, "edit_unsupported.json")
    assert event.status == InboundEvent.Status.PROCESSED
    wamid = "wamid.HBgLMzQ2MTIzNDU2NzgVAgARGBJVTlNVUFBPUlRFRDAwMDAwMQA="
    assert event.summary["ignored"] == [f"edit without the original message id (wamid {wamid})"]
    assert Message.objects.count() == 1 and "edits" not in Message.objects.get().meta


@pytest.mark.django_db
def test_revoke_marks_the_original_deleted_for_the_agent_and_keeps_its_words(client, channel):
    deliver_meta(client, channel, "text.json")
    _, [event] = deliver_meta(client, channel, "revoke.json")
    assert event.status == InboundEvent.Status.PROCESSED and event.summary["updates"] == 1
    [original] = Message.objects.all()
    assert original.body == "Hola, ¿dónde está mi pedido?"
    assert original.meta["revoked"] is True and original.meta["revoked_by"] == "customer"
    assert original.meta["revoked_at"].startswith("2025-11-20")

    agent = UserFactory()
    client.force_login(agent)
    html = client.get(
        f"/inbox/case/{original.case_id}/?partial=timeline&message={original.pk}"
    ).content.decode()
    assert "msg text in revoked" in html and "Deleted by the customer" in html
    assert "¿dónde está mi pedido?" in html


@pytest.mark.django_db
def test_revoke_of_an_unknown_message_is_recorded(client, channel):
    _, [event] = deliver_meta(client, channel, "revoke.json")
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.summary["ignored"][0].startswith(f"revoke of unknown message {ORIGINAL}")
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_business_app_edit_and_delete_of_its_own_message_change_the_echo(client, channel):
    import json

    deliver_meta(client, channel, "text.json")
    deliver_meta(client, channel, "smb_echo.json")
    payload = json.loads(fixture_bytes("whatsapp", "smb_echo.json"))
    [echo] = payload["entry"][0]["changes"][0]["value"]["message_echoes"]
    edit = {**echo, "id": "wamid.echo.edit.1", "timestamp": "1763630195", "type": "edit"}
    del edit["text"]
    edit["edit"] = {
        "original_message_id": "wamid.echo.app.1",
        "message": {"type": "text", "text": {"body": "Te llamo en 10 minutos"}},
    }
    revoke = {**echo, "id": "wamid.echo.revoke.1", "timestamp": "1763630199", "type": "revoke"}
    del revoke["text"]
    revoke["revoke"] = {"original_message_id": "wamid.echo.app.1"}
    payload["entry"][0]["changes"][0]["value"]["message_echoes"] = [revoke, edit]  # out of order
    body = json.dumps(payload).encode()
    _, [event] = check_webhook(client, channel, body, headers=meta_headers(body))
    assert event.status == InboundEvent.Status.PROCESSED and event.summary["updates"] == 2
    ours = Message.objects.get(external_id="wamid.echo.app.1")
    assert ours.body == "Te llamo en 10 minutos" and ours.meta["edits"][0]["text"] == "Te llamo en 5 minutos"
    assert ours.meta["revoked"] is True and ours.meta["revoked_by"] == "agent"
    assert Message.objects.count() == 2

    client.force_login(UserFactory())
    html = client.get(f"/inbox/case/{ours.case_id}/?partial=timeline&message={ours.pk}").content.decode()
    assert "Deleted from the WhatsApp Business app" in html


# Business-scoped user ids (usernames, no phone number) -------------------------

BSUID = "ES.1410018717833190"


@pytest.mark.django_db
def test_sender_with_only_a_business_scoped_id_is_an_identity_of_its_own(client, channel, graph):
    _, [event] = deliver_meta(client, channel, "bsuid_only.json")
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    message = Message.objects.get()
    assert (message.identity.kind, message.identity.address) == ("whatsapp_bsuid", BSUID)
    assert message.thread.customer.name == "Marta" and message.meta["whatsapp_username"] == "@marta.r"
    assert message.body == "Hola, soy Marta, mi pedido 5521 no llega"

    # The reply goes to the BSUID in Cloud API's "recipient" field (there is no number for "to").
    recent = customer_wrote(channel, "whatsapp_bsuid", BSUID, hours_ago=1)  # the fixture's clock is 2025
    assert recent.identity == message.identity
    graph.script(
        Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": BSUID, "user_id": BSUID}],
                "messages": [{"id": "wamid.sent.bsuid.1"}],
            },
        )
    )
    reply = send_reply(case=message.case, author_user=UserFactory(), body="Lo miramos ahora mismo.")
    assert message_deliver(message_id=reply.pk).outcome == "sent"
    assert graph.requests[0].json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "recipient": BSUID,
        "type": "text",
        "text": {"body": "Lo miramos ahora mismo.", "preview_url": False},
        "biz_opaque_callback_data": f"helpdesk-message-{reply.pk}",
    }


@pytest.mark.django_db
def test_phone_and_business_scoped_id_are_one_customer_whichever_comes_later(client, channel):
    _, [event] = deliver_meta(client, channel, "bsuid_with_phone.json")
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    first = Message.objects.get()
    # The phone stays the identity (shared with SMS and calls); the BSUID joins the same customer.
    assert (first.identity.kind, first.identity.address) == ("phone", PHONE)
    assert first.meta["whatsapp_bsuid"] == "ES.2287733190114410"
    customer = first.thread.customer
    assert set(customer.identities.values_list("kind", "address")) == {
        ("phone", PHONE),
        ("whatsapp_bsuid", "ES.2287733190114410"),
    }
    # She then hides her number behind a username: same customer, same thread, same case.
    payload = fixture_bytes("whatsapp", "bsuid_only.json").replace(BSUID.encode(), b"ES.2287733190114410")
    payload = payload.replace(b"BSUID0000000000001", b"BSUID0000000000002")
    check_webhook(client, channel, payload, headers=meta_headers(payload))
    later = Message.objects.exclude(pk=first.pk).get()
    assert later.identity.kind == "whatsapp_bsuid" and later.thread_id == first.thread_id
    assert later.case_id == first.case_id and Customer.objects.count() == 1


@pytest.mark.django_db
def test_username_first_then_number_revealed_joins_the_username_customer(client, channel):
    deliver_meta(client, channel, "bsuid_only.json")
    payload = fixture_bytes("whatsapp", "bsuid_with_phone.json").replace(
        b"ES.2287733190114410", BSUID.encode()
    )
    check_webhook(client, channel, payload, headers=meta_headers(payload))
    assert Customer.objects.count() == 1
    assert set(Identity.objects.values_list("kind", "address")) == {
        ("whatsapp_bsuid", BSUID),
        ("phone", PHONE),
    }


@pytest.mark.django_db
def test_malformed_business_scoped_id_fails_the_item_clearly(client, channel):
    payload = fixture_bytes("whatsapp", "bsuid_only.json").replace(BSUID.encode(), b"not a bsuid")
    _, [event] = check_webhook(client, channel, payload, headers=meta_headers(payload))
    assert event.status == InboundEvent.Status.FAILED and event.retryable is False
    assert "is not a WhatsApp business-scoped user id" in event.error
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_phone_and_business_scoped_id_of_two_customers_are_not_moved(client, channel):
    # The number is a known SMS customer; the BSUID already wrote as a username: two
    # customers until an agent merges them, never a silent move.
    sms_customer = Identity.objects.create(customer=CustomerFactory(), kind="phone", address=PHONE).customer
    deliver_meta(client, channel, "bsuid_only.json")
    username_customer = Identity.objects.get(kind="whatsapp_bsuid").customer
    payload = fixture_bytes("whatsapp", "bsuid_with_phone.json").replace(
        b"ES.2287733190114410", BSUID.encode()
    )
    check_webhook(client, channel, payload, headers=meta_headers(payload))
    message = Message.objects.get(body="Sigo esperando")
    assert message.identity.customer == sms_customer
    assert message.meta["whatsapp_bsuid_customer"] == username_customer.pk
    assert Identity.objects.get(kind="whatsapp_bsuid").customer == username_customer
