"""Email channel against real servers: aiosmtpd for SMTP, dovecot for IMAP, and the relay webhook."""

from __future__ import annotations

import json
import os
import time

import pytest
from django.core.files.storage import default_storage

from channels_adapters.email.adapter import EmailAdapter
from channels_adapters.email.models import MailboxState
from channels_adapters.email.threads import reply_address, reply_token, subject_tag
from channels_adapters.models import InboundEvent
from channels_adapters.services import inbound_event_process
from conversations.delivery import message_deliver
from conversations.models import Case, DeliveryStatus, Direction, Message
from conversations.services import send_automatic, send_reply
from customers.models import Identity
from customers.services import identity_add
from tests.channels_adapters.email_support import (
    SIGNING_KEY,
    SMTP_PASSWORD,
    SUPPORT_ADDRESS,
    SmtpServer,
    build_mail,
    email_channel,
    mailgun_form,
    raw_headers,
)
from tests.factories import ChannelFactory, CustomerFactory, MessageFactory
from tests.imap_server import DOVECOT, DovecotServer
from tests.webhooks import check_webhook, fixture_bytes

pytestmark = [
    pytest.mark.django_db,
    # The test SMTP server takes logins without TLS on purpose (127.0.0.1 only).
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    # Attachments and originals go to this test's own storage.
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def channel():
    return email_channel()


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dovecot_server():
    if not os.path.exists(DOVECOT):
        pytest.skip("dovecot is not installed (Debian package dovecot-imapd; .ci/run installs it)")
    server = DovecotServer().start()
    yield server
    server.stop()


@pytest.fixture
def dovecot(dovecot_server):
    dovecot_server.empty("INBOX", "Processed")
    return dovecot_server


def relay(client, channel, raw: bytes, **kwargs):
    """POST raw MIME to the channel's webhook as a relay would, then process it."""
    return check_webhook(
        client, channel, raw, headers=raw_headers(channel, raw), content_type="message/rfc822", **kwargs
    )


def relay_fixture(client, channel, name: str):
    _, [event] = relay(client, channel, fixture_bytes("email", name))
    return event


def outbound(channel, *, external_id: str, address: str, **kwargs) -> Message:
    """One of our sent mails, as message_deliver leaves it."""
    customer = CustomerFactory()
    identity = Identity.objects.create(customer=customer, kind="email", address=address)
    case = Case.objects.create(thread=customer.thread, origin_channel=channel, opened_at=time_now())
    return MessageFactory(
        case=case,
        channel=channel,
        identity=identity,
        direction=Direction.OUT,
        author="agent",
        external_id=external_id,
        status=DeliveryStatus.SENT,
        meta={"message_id": external_id, "subject": "Your order"},
        **kwargs,
    )


def time_now():
    from django.utils import timezone

    return timezone.now()


# Content: the fixture set ------------------------------------------------------------


def test_plain_reply_shows_the_new_words_and_keeps_cc_and_the_original(client, channel):
    event = relay_fixture(client, channel, "plain_reply_quote.eml")
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    message = Message.objects.get()
    assert message.direction == Direction.IN and message.channel == channel
    assert message.body == (
        "Thanks, restarting the router fixed it!\n\nTwo things still to check:\n"
        "- the invoice address\n- the delivery date"
    )
    assert "wrote:" not in message.body and "Best regards" not in message.body
    assert message.identity.address == "jane.doe@example.org"  # lowercased
    assert message.thread.customer.name == "Jane Doe"
    meta = message.meta
    assert meta["message_id"] == "<CAJane-reply-0001@mail.example.org>"
    assert message.external_id == meta["message_id"]
    assert meta["in_reply_to"] == "<hd.900.aaaaaaaaaaaaaaaa@support.example.com>"
    assert meta["references"] == [
        "<CAJane-first-0001@mail.example.org>",
        "<hd.900.aaaaaaaaaaaaaaaa@support.example.com>",
    ]
    assert meta["cc"] == ["bob.martin@example.org"]
    assert meta["subject"] == "Re: Your order #4411 [#77]"
    assert "> please restart the router" in meta["full_text"]
    with default_storage.open(meta["original_eml_path"], "rb") as original:
        assert original.read() == fixture_bytes("email", "plain_reply_quote.eml")
    assert message.provider_timestamp.isoformat() == "2026-11-24T09:15:02+00:00"
    assert message.case.subject == meta["subject"] == "Re: Your order #4411 [#77]"


def test_html_only_mail_is_sanitized_and_readable(client, channel):
    relay_fixture(client, channel, "html_only.eml")
    message = Message.objects.get()
    assert "I cannot log in to my account since yesterday." in message.body
    assert "<script" not in message.html and "onclick" not in message.html and "onerror" not in message.html
    assert "alert(" not in message.html
    assert '<a href="https://example.net/screens/1"' in message.html
    with default_storage.open(message.meta["original_html_path"]) as kept:
        assert b"<script>" in kept.read()  # the original is kept as sent, never rendered


@pytest.mark.parametrize(
    "name, expected",
    [
        ("iso8859_1.eml", "Je n'ai pas reçu ma commande. Où est-elle ?"),
        ("windows1252.eml", "The \u201cpremium\u201d plan was charged twice \u2013 \u20ac49 each time."),
        ("broken_charset.eml", "Where is my refund of 30 \u20ac? Größe M, naïve café."),
    ],
)
def test_non_utf8_mail_comes_through_readable(client, channel, name, expected):
    event = relay_fixture(client, channel, name)
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    message = Message.objects.get()
    assert expected in message.body
    assert "\ufffd" not in message.body


def test_iso8859_headers_are_decoded(client, channel):
    relay_fixture(client, channel, "iso8859_1.eml")
    message = Message.objects.get()
    assert message.thread.customer.name == "André Lefèvre"
    assert message.meta["subject"] == "Commande non reçue"


def test_declared_latin1_html_with_windows_1252_bytes_is_read_as_1252(client, channel):
    relay_fixture(client, channel, "broken_charset.eml")
    message = Message.objects.get()
    assert "\u201crefund\u201d of 30 \u20ac" in message.html
    assert message.meta["charset_repairs"] == ["declared 'x-unknown-charset', read as utf-8"]


def test_inline_image_is_stored_and_shown_in_the_html(client, channel):
    relay_fixture(client, channel, "inline_image.eml")
    message = Message.objects.get()
    [image] = message.attachments
    assert image["content_type"] == "image/png" and image["inline"] is True
    assert image["content_id"] == "error-shot@example.in"
    assert f'src="{image["url"]}"' in message.html and "cid:" not in message.html
    with default_storage.open(image["path"], "rb") as stored:
        assert stored.read().startswith(b"\x89PNG")
    assert message.kind == "text"


def test_several_attachments_are_stored_with_their_names(client, channel):
    relay_fixture(client, channel, "attachments.eml")
    message = Message.objects.get()
    names = [(a["name"], a["content_type"]) for a in message.attachments]
    assert names == [
        ("invoice-4411.pdf", "application/pdf"),
        ("Rechnung 4412 über.pdf", "application/pdf"),
        ("orders.csv", "text/csv"),
    ]
    with default_storage.open(message.attachments[2]["path"]) as csv:
        assert csv.read() == b"order,amount\n4411,49.00\n4412,49.00\n"
    assert message.body == "Here are the two invoices and the order list."


def test_forwarded_mail_keeps_the_forwarded_content(client, channel):
    relay_fixture(client, channel, "forwarded.eml")
    message = Message.objects.get()
    assert message.body.startswith("See below, the tracking link does not work.")
    assert "Your parcel 4411 is on its way" in message.body
    assert message.meta["forwarded"] is True


@pytest.mark.parametrize(
    "name, new_words, quoted",
    [
        (
            "outlook_original_message_reply.eml",
            "Hi,\n\nYes, the new address is 12 Rose Street, Leeds LS1 4AB.\n\nThanks\nMark",
            "Could you confirm the delivery address for order 5521?",
        ),
        (
            "aol_reply.eml",
            "I paid with the Visa card ending 4242, please refund it there.\n\nPat",
            "Which card should we refund?",
        ),
        (
            "yahoo_reply_unquoted_boundary.eml",
            "It still has not arrived. Here is the photo of the empty letterbox \u2013 "
            "the neighbours have nothing either.",
            "the parcel left our warehouse yesterday",
        ),
        (
            # The separator in Outlook's German, which the reply library does not know.
            "outlook_de_reply.eml",
            "Hallo,\n\ndie neue Lieferadresse ist Rosenstraße 12, 80331 München \u2013 "
            "bitte \u201edringend\u201c ändern.",
            "bitte bestätigen Sie die Lieferadresse",
        ),
        (
            "gmail_html_reply.eml",
            "The label printed fine, the parcel goes out today.",
            "here is your return label",
        ),
    ],
)
def test_original_message_reply_shows_only_the_new_words(client, channel, name, new_words, quoted):
    # Outlook, AOL and Yahoo put "-----Original Message-----" above a reply's quote:
    # it is a reply, not a forward, and the agent reads only what is new.
    event = relay_fixture(client, channel, name)
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    message = Message.objects.get()
    assert message.body == new_words
    assert "Original Message" not in message.body and "Nachricht" not in message.body
    assert quoted not in message.body and "forwarded" not in message.meta
    # What the timeline shows of an HTML mail is the reply too, not the history.
    if message.html:
        assert new_words.split("\n")[-1] in message.html and quoted not in message.html
        assert message.meta["html_quote_removed"] is True
    # The whole mail stays one click away.
    assert quoted in message.meta["full_text"]
    with default_storage.open(message.meta["original_eml_path"], "rb") as original:
        assert original.read() == fixture_bytes("email", name)


def test_timeline_shows_the_reply_and_keeps_the_history_behind_a_click(client, channel, agent):
    relay_fixture(client, channel, "outlook_original_message_reply.eml")
    message = Message.objects.get()
    client.force_login(agent)
    html = client.get(
        f"/inbox/case/{message.case_id}/?partial=timeline&message={message.pk}"
    ).content.decode()
    shown, _, hidden = html.partition('<details class="full-message">')
    assert "12 Rose Street" in shown and "Could you confirm the delivery address" not in shown
    assert "Show the quoted history" in hidden and "Could you confirm the delivery address" in hidden


def test_forward_with_an_original_message_line_keeps_the_forwarded_mail(client, channel):
    relay_fixture(client, channel, "outlook_forward.eml")
    message = Message.objects.get()
    assert message.meta["forwarded"] is True and "full_text" not in message.meta
    assert message.body.startswith("This invoice charges me twice, can you check?")
    assert "please find your invoice INV-2026-0042 of EUR 98.00" in message.body


def test_unquoted_boundary_with_equals_keeps_the_body_and_the_attachment_apart(client, channel):
    # boundary=----=_Part_... without quotes: the stdlib stops at the "=" and would
    # turn the whole mail into one attachment with no text.
    relay_fixture(client, channel, "yahoo_reply_unquoted_boundary.eml")
    message = Message.objects.get()
    assert message.kind == "text" and message.body.startswith("It still has not arrived.")
    [photo] = message.attachments
    assert (photo["name"], photo["content_type"]) == ("letterbox.png", "image/png")
    with default_storage.open(photo["path"], "rb") as stored:
        assert stored.read().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "name, subject, sender, body",
    [
        (
            # Labelled GB2312, written in GBK (镕, 啰), the subject split inside a character.
            "gb2312_gbk_subject.eml",
            "关于订单4411的问题：朱镕先生啰嗦了",
            "朱镕",
            "我是朱镕。订单4411还没有到，请帮忙查一下。啰嗦了，谢谢！",
        ),
        (
            # Outlook's Korean label, holding code page 949 syllables (똠, 햏).
            "ks_c_5601_subject.eml",
            "주문 5521 배송 문의 (똠방각하 햏)",
            "김민준",
            "주문 5521 배송이 아직 안 왔어요. 똠방각하 햏!",
        ),
        (
            # ISO-8859-1 label, Windows-1252 quotes, dash and euro; then a charset nobody knows.
            "mislabelled_header_charsets.eml",
            "\u201cPremium\u201d plan charged twice \u2013 \u20ac49 Kundennummer Müller",
            "Jürgen Müller",
            "der \u201cPremium\u201d Tarif wurde zweimal abgebucht \u2013 je 49 \u20ac.",
        ),
    ],
)
def test_header_charsets_are_read_as_their_supersets_like_bodies(
    client, channel, name, subject, sender, body
):
    event = relay_fixture(client, channel, name)
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    message = Message.objects.get()
    assert message.meta["subject"] == message.case.subject == subject
    assert message.thread.customer.name == sender
    assert body in message.body
    assert "\ufffd" not in message.meta["subject"] + message.body + message.thread.customer.name


def test_attachment_names_in_a_labels_superset_are_read_right(client, channel):
    # filename="=?gb2312?B?...?=" (Outlook, Foxmail) and filename*=gb2312''%..  (RFC 2231),
    # both holding GBK-only characters.
    relay_fixture(client, channel, "gbk_attachment_names.eml")
    message = Message.objects.get()
    assert [(a["name"], a["content_type"]) for a in message.attachments] == [
        ("朱镕的发票.pdf", "application/pdf"),
        ("啰嗦的清单.csv", "text/csv"),
    ]
    assert message.body == "附件是发票和清单。"


def test_unknown_header_charset_is_noted_as_a_repair(client, channel):
    relay_fixture(client, channel, "mislabelled_header_charsets.eml")
    assert Message.objects.get().meta["charset_repairs"] == ["declared 'x-mac-unknown', read as utf-8"]


def test_raw_8bit_headers_are_read_as_utf8_then_as_the_body_charset(client, channel):
    utf8 = 'Subject: Größe M fehlt\r\nFrom: "Doe, Jöhn" <john@example.de>\r\n'
    gbk = "Subject: 朱镕的订单\r\nFrom: 朱镕 <zhu@example.cn>\r\n"
    raws = [
        utf8.encode()
        + b"Message-ID: <raw-1@example.de>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo",
        gbk.encode("gbk")
        + b"Message-ID: <raw-2@example.cn>\r\nContent-Type: text/plain; charset=gbk\r\n\r\nhi",
    ]
    for raw in raws:
        relay(client, channel, raw)
    first, second = Message.objects.order_by("pk")
    assert (first.meta["subject"], first.thread.customer.name) == ("Größe M fehlt", "Doe, Jöhn")
    assert (second.meta["subject"], second.thread.customer.name) == ("朱镕的订单", "朱镕")


# Loop and noise guards -------------------------------------------------------------


@pytest.mark.parametrize(
    "name, reason",
    [
        ("auto_reply.eml", "Auto-Submitted: auto-replied"),
        ("outlook_oof.eml", "X-Auto-Response-Suppress: All"),
        ("newsletter.eml", "Precedence: bulk"),
    ],
)
def test_automated_mail_opens_no_case(client, channel, name, reason):
    event = relay_fixture(client, channel, name)
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.summary["messages"] == 0
    assert reason in event.summary["ignored"][0]
    assert Message.objects.count() == 0 and Case.objects.count() == 0


def test_auto_reply_to_an_open_case_does_not_wake_it_or_answer(client, channel, smtp):
    # The customer's out-of-office answers our reply: the case stays as the agent left it,
    # and nothing is sent back (no auto-response loop).
    sent = outbound(channel, external_id="<hd.900.aaaaaaaaaaaaaaaa@support.example.com>", address="x@y.org")
    sent.case.status = "pending"
    sent.case.save()
    relay_fixture(client, channel, "auto_reply.eml")
    sent.case.refresh_from_db()
    assert sent.case.status == "pending"
    assert Message.objects.count() == 1 and smtp.received == []


def test_list_id_alone_is_noise(client, channel):
    raw = build_mail(headers={"List-Id": "<users.lists.example.org>"})
    _, [event] = relay(client, channel, raw)
    assert event.summary["ignored"] == ["automated mail (mailing list (List-Id)) from jane.doe@example.org"]


def test_mail_that_only_suppresses_read_receipts_is_a_persons_mail(client, channel):
    raw = build_mail(headers={"X-Auto-Response-Suppress": "RN, NRN"})
    relay(client, channel, raw)
    assert Message.objects.count() == 1


def test_bounce_marks_our_outbound_message_failed_in_plain_words(client, channel):
    sent = outbound(
        channel, external_id="<hd.4242.0123456789abcdef@support.example.com>", address="nobody@example.org"
    )
    event = relay_fixture(client, channel, "bounce_dsn.eml")
    assert event.status == InboundEvent.Status.PROCESSED and event.summary["statuses"] == 1
    sent.refresh_from_db()
    assert sent.status == DeliveryStatus.FAILED
    assert sent.error.startswith("The email to nobody@example.org bounced: the address does not exist.")
    assert "550 5.1.1" in sent.error
    assert Case.objects.count() == 1 and Message.objects.count() == 1  # no case from the bounce


def test_bounce_without_ids_finds_our_latest_mail_to_the_failed_recipient(client, channel):
    older = outbound(channel, external_id="<hd.1.a@support.example.com>", address="full.box@example.org")
    newer = MessageFactory(
        case=older.case,
        channel=channel,
        identity=older.identity,
        direction=Direction.OUT,
        author="agent",
        external_id="<hd.2.b@support.example.com>",
        status=DeliveryStatus.SENT,
    )
    relay_fixture(client, channel, "bounce_exim.eml")
    newer.refresh_from_db()
    older.refresh_from_db()
    assert newer.status == DeliveryStatus.FAILED and "mailbox is full" in newer.error
    assert older.status == DeliveryStatus.SENT


def test_delay_warning_from_the_mailer_daemon_is_not_a_failure(client, channel):
    sent = outbound(channel, external_id="<hd.3.c@support.example.com>", address="slow@example.org")
    raw = build_mail(
        sender="Mail Delivery System <MAILER-DAEMON@relay.example.net>",
        subject="Warning: message delayed",
        body="This is a warning only. Your message has not been delivered yet to slow@example.org.\n"
        "The mail system will continue trying for 4 days.",
        headers={"In-Reply-To": sent.external_id},
    )
    _, [event] = relay(client, channel, raw)
    assert event.summary["ignored"] == ["delivery status 'delayed' for an unnamed recipient"]
    sent.refresh_from_db()
    assert sent.status == DeliveryStatus.SENT


def test_bounce_about_mail_we_never_sent_is_ignored(client, channel):
    event = relay_fixture(client, channel, "bounce_dsn.eml")
    assert event.status == InboundEvent.Status.PROCESSED
    assert "bounce about mail we did not send" in event.summary["ignored"][0]
    assert Message.objects.count() == 0 and Case.objects.count() == 0


# Threading and identity -------------------------------------------------------------


def test_customer_who_wrote_on_the_api_with_a_phone_then_emails_lands_on_the_same_thread(client, channel):
    from channels_adapters.base import hmac_sha256_hex

    api = ChannelFactory(credentials={"secret": "api-secret", "callback_url": "http://127.0.0.1:9/"})
    body = json.dumps(
        {"external_id": "crm-1", "from": {"phone": "+14155550123", "name": "Ana Silva"}, "text": "My parcel?"}
    ).encode()
    check_webhook(client, api, body, headers={"X-Signature": "sha256=" + hmac_sha256_hex("api-secret", body)})
    first = Message.objects.get()
    customer = first.thread.customer
    # The agent on the phone writes down her email address.
    identity_add(customer=customer, kind="email", address="Ana.Silva@Example.com")

    relay(
        client,
        channel,
        build_mail(sender="Ana <ana.silva@example.com>", body="Here is my order number: 4411"),
    )
    mail = Message.objects.exclude(pk=first.pk).get()
    assert mail.thread_id == first.thread_id
    assert mail.case_id == first.case_id  # the case in progress continues
    assert mail.channel == channel and mail.identity.kind == "email"
    assert Identity.objects.filter(customer=customer).count() == 2


def test_reply_with_only_references_joins_the_case_of_our_mail(client, channel):
    sent = outbound(
        channel, external_id="<hd.901.bbbbbbbbbbbbbbbb@support.example.com>", address="jane@old.org"
    )
    event = relay_fixture(client, channel, "references_only.eml")
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    reply = Message.objects.get(direction=Direction.IN)
    # Jane wrote from a new address, but answered our mail: same customer, same thread, same case.
    assert reply.thread_id == sent.thread_id and reply.case_id == sent.case_id
    assert reply.meta["thread_match"] == "references"
    assert reply.meta["identity_linked_by"] == "references"
    assert Identity.objects.get(address="jane.doe@example.org").customer_id == sent.thread.customer_id
    assert reply.body == "One more question: can I change the delivery address?"


def test_copied_person_answering_all_keeps_their_own_thread(client, channel):
    relay_fixture(client, channel, "plain_reply_quote.eml")  # Jane wrote with Bob in Cc
    jane = Message.objects.get()
    raw = build_mail(
        sender="Bob Martin <bob.martin@example.org>",
        message_id="<bob-1@example.org>",
        headers={"In-Reply-To": jane.external_id, "Cc": "jane.doe@example.org"},
    )
    relay(client, channel, raw)
    bob = Message.objects.get(external_id="<bob-1@example.org>")
    assert bob.thread_id != jane.thread_id
    assert bob.meta["copied_on_case"] == jane.case_id and "identity_linked_by" not in bob.meta
    assert Identity.objects.get(address="bob.martin@example.org").customer_id != jane.thread.customer_id


def test_reply_token_in_the_address_finds_the_case(client, channel):
    sent = outbound(channel, external_id="<hd.5.c@support.example.com>", address="owner@example.org")
    to = reply_address(SUPPORT_ADDRESS, sent.case_id)
    relay(client, channel, build_mail(sender="colleague@example.org", to=to, body="Answering for my boss."))
    reply = Message.objects.get(direction=Direction.IN)
    assert reply.thread_id == sent.thread_id and reply.meta["thread_match"] == "token"


def test_forged_reply_token_or_subject_tag_does_not_attach_a_stranger(client, channel):
    sent = outbound(channel, external_id="<hd.6.d@support.example.com>", address="owner@example.org")
    forged = f"support+c{sent.case_id}-0000000000@support.example.com"
    relay(
        client,
        channel,
        build_mail(sender="mallory@example.net", to=forged, subject=f"Re: hi {subject_tag(sent.case_id)}"),
    )
    mail = Message.objects.get(direction=Direction.IN)
    assert mail.thread_id != sent.thread_id
    assert mail.meta["thread_match"] == "subject" and mail.meta["matched_case"] == sent.case_id
    assert Identity.objects.get(address="mallory@example.net").customer_id != sent.thread.customer_id


def test_known_sender_answering_another_customers_mail_stays_on_their_own_thread(client, channel):
    sent = outbound(channel, external_id="<hd.7.e@support.example.com>", address="owner@example.org")
    other = Identity.objects.create(customer=CustomerFactory(), kind="email", address="other@example.org")
    raw = build_mail(sender="other@example.org", headers={"In-Reply-To": "<hd.7.e@support.example.com>"})
    relay(client, channel, raw)
    mail = Message.objects.get(direction=Direction.IN)
    assert mail.thread.customer_id == other.customer_id
    assert mail.meta["refers_to_other_customer"] == sent.thread.customer_id


def test_the_same_mail_delivered_twice_is_one_message(client, channel):
    raw = fixture_bytes("email", "attachments.eml")
    relay(client, channel, raw)
    _, [again] = relay(client, channel, raw)
    assert again.summary["duplicates"] == 1
    assert Message.objects.count() == 1
    # The repeat stored no second copy of the files: three attachments and the original.
    assert len(_files(default_storage.path("attachments"))) == 4


def _files(root):
    import pathlib

    return [p for p in pathlib.Path(root).rglob("*") if p.is_file()]


def test_mail_to_two_of_our_mailboxes_is_one_message(client, channel):
    sales = email_channel(address="sales@support.example.com")
    raw = build_mail(headers={"Cc": "sales@support.example.com"})
    relay(client, channel, raw)
    _, [event] = relay(client, sales, raw)
    assert event.summary["ignored"] == ["same mail already received on Support mailbox"]
    assert Message.objects.count() == 1


def test_mail_from_our_own_address_is_ignored(client, channel):
    _, [event] = relay(client, channel, build_mail(sender="Acme <support+c1-abc@support.example.com>"))
    assert event.summary["ignored"] == [f"mail from our own address {SUPPORT_ADDRESS}"]
    assert Message.objects.count() == 0


def test_threading_lookups_stay_bounded_with_a_long_history(client, channel, django_assert_max_num_queries):
    sent = outbound(channel, external_id="<hd.8.f@support.example.com>", address="jane.doe@example.org")
    for n in range(30):
        MessageFactory(
            case=sent.case, channel=channel, external_id=f"<old-{n}@x>", meta={"message_id": f"<{n}>"}
        )
    event = InboundEvent.objects.create(
        channel=channel,
        body=build_mail(headers={"In-Reply-To": "<hd.8.f@support.example.com>"}),
        content_type="message/rfc822",
    )
    with django_assert_max_num_queries(30):
        inbound_event_process(event_id=event.pk)
    assert Message.objects.filter(direction=Direction.IN, case=sent.case).count() == 31


# Relay security ------------------------------------------------------------------------


def test_forged_raw_relay_is_refused_and_nothing_is_stored(client, channel):
    raw = fixture_bytes("email", "plain_reply_quote.eml")
    forged = {"X-Signature": "sha256=" + "0" * 64}
    check_webhook(client, channel, raw, headers=forged, content_type="message/rfc822", expect_status=403)
    check_webhook(client, channel, raw, headers={}, content_type="message/rfc822", expect_status=403)
    assert InboundEvent.objects.count() == 0 and Message.objects.count() == 0


def test_mailgun_form_with_body_mime_lands_as_a_message(client, channel):
    raw = fixture_bytes("email", "plain_reply_quote.eml")
    body, content_type = mailgun_form(raw)
    response, [event] = check_webhook(client, channel, body, content_type=content_type)
    assert event.status == InboundEvent.Status.PROCESSED, event.error
    assert Message.objects.get().meta["message_id"] == "<CAJane-reply-0001@mail.example.org>"


def test_mailgun_recipient_field_carries_the_reply_token(client, channel):
    sent = outbound(channel, external_id="<hd.9.g@support.example.com>", address="owner@example.org")
    raw = build_mail(sender="assistant@example.org", to="Support <support@support.example.com>")
    body, content_type = mailgun_form(
        raw, recipient=f"support+{reply_token(sent.case_id)}@support.example.com"
    )
    check_webhook(client, channel, body, content_type=content_type)
    assert Message.objects.get(direction=Direction.IN).thread_id == sent.thread_id


def test_mailgun_stale_or_forged_signature_is_refused(client, channel):
    raw = fixture_bytes("email", "plain_reply_quote.eml")
    stale, content_type = mailgun_form(raw, timestamp=int(time.time()) - 301)
    check_webhook(client, channel, stale, content_type=content_type, expect_status=403)
    forged, content_type = mailgun_form(raw, key="not-" + SIGNING_KEY)
    check_webhook(client, channel, forged, content_type=content_type, expect_status=403)
    assert InboundEvent.objects.count() == 0


def test_signed_but_unreadable_mail_is_kept_failed(client, channel):
    _, [event] = relay(client, channel, b"this is not a mail, there is no sender\r\n")
    assert event.status == InboundEvent.Status.FAILED and event.retryable is False
    assert "no From address" in event.error
    body, content_type = mailgun_form(b"", **{"body-mime": ""})
    _, [empty] = check_webhook(client, channel, body, content_type=content_type)
    assert empty.status == InboundEvent.Status.FAILED and "empty" in empty.error


# Outbound over SMTP ----------------------------------------------------------------------


def _deliver(message: Message) -> Message:
    message_deliver(message_id=message.pk)
    message.refresh_from_db()
    return message


def test_our_reply_threads_in_the_customers_mail_client(client, agent, smtp):
    channel = email_channel(smtp_port=smtp.port)
    relay_fixture(client, channel, "plain_reply_quote.eml")
    inbound = Message.objects.get()
    agent.first_name, agent.last_name = "Sam", "Agent"
    agent.save()

    reply = send_reply(case=inbound.case, author_user=agent, body="Glad it works!\nThe invoice is fixed.")
    reply = _deliver(reply)
    assert reply.status == DeliveryStatus.SENT, reply.error
    [received] = smtp.received
    mail = received.message
    assert received.rcpt_tos == ["jane.doe@example.org", "bob.martin@example.org"]
    assert mail["Message-ID"] == reply.external_id == reply.meta["message_id"]
    assert reply.external_id.endswith("@support.example.com>")
    assert mail["In-Reply-To"] == "<CAJane-reply-0001@mail.example.org>"
    assert mail["References"].split() == [
        "<CAJane-first-0001@mail.example.org>",
        "<hd.900.aaaaaaaaaaaaaaaa@support.example.com>",
        "<CAJane-reply-0001@mail.example.org>",
    ]
    assert mail["Subject"] == f"Re: Your order #4411 {subject_tag(inbound.case_id)}"
    assert mail["From"] == f"Acme Support <{SUPPORT_ADDRESS}>"
    assert mail["Reply-To"] == reply_address(SUPPORT_ADDRESS, inbound.case_id)
    assert mail["Cc"] == "bob.martin@example.org"
    assert "Auto-Submitted" not in mail
    text = mail.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = mail.get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Glad it works!\nThe invoice is fixed.\n\n-- \nSam Agent\nAcme Support")
    assert "Glad it works!<br>The invoice is fixed." in html and "Sam Agent" in html

    # The customer answers our mail from her client: it threads back onto the case.
    answer = build_mail(
        message_id="<CAJane-reply-0002@mail.example.org>",
        body="Perfect, thanks.",
        headers={
            "In-Reply-To": reply.external_id,
            "References": mail["References"] + " " + reply.external_id,
        },
    )
    relay(client, channel, answer)
    back = Message.objects.get(external_id="<CAJane-reply-0002@mail.example.org>")
    assert back.case_id == inbound.case_id and back.meta["thread_match"] == "in_reply_to"


def test_reply_sends_attachments_and_a_stable_message_id(client, agent, smtp):
    from conversations.attachments import attachment_save

    channel = email_channel(smtp_port=smtp.port)
    relay(client, channel, build_mail())
    case = Message.objects.get().case
    pdf = attachment_save(content=b"%PDF-1.4 quote", name="quote.pdf", content_type="application/pdf")
    reply = _deliver(send_reply(case=case, author_user=agent, body="Your quote.", attachments=[pdf]))
    mail = smtp.received[0].message
    [attached] = list(mail.iter_attachments())
    assert attached.get_filename() == "quote.pdf" and attached.get_content() == b"%PDF-1.4 quote"
    assert mail["Subject"] == f"Re: Question about my order {subject_tag(case.pk)}"
    assert EmailAdapter.outbound_message_id(channel, reply) == reply.external_id


def test_bot_mail_says_it_is_automatic(client, smtp):
    channel = email_channel(smtp_port=smtp.port)
    relay(client, channel, build_mail())
    case = Message.objects.get().case
    _deliver(send_automatic(case=case, body="We got your mail and answer within a day."))
    mail = smtp.received[0].message
    assert mail["Auto-Submitted"] == "auto-replied" and mail["X-Auto-Response-Suppress"] == "All"


def test_smtp_login_failure_reaches_the_agent_in_plain_words(client, agent, smtp):
    channel = email_channel(smtp_port=smtp.port, smtp_password="wrong-" + SMTP_PASSWORD)
    relay(client, channel, build_mail())
    reply = _deliver(send_reply(case=Message.objects.get().case, author_user=agent, body="Hello"))
    assert reply.status == DeliveryStatus.FAILED, reply.error
    assert reply.error.startswith(f"The mail server 127.0.0.1:{smtp.port} refused our login (535")
    assert "check the SMTP username and password of Support mailbox" in reply.error
    assert smtp.received == []


def test_refused_recipient_fails_and_greylisting_retries(client, agent):
    refusing = SmtpServer(mode="reject_recipient").start()
    try:
        channel = email_channel(smtp_port=refusing.port)
        relay(client, channel, build_mail())
        reply = _deliver(send_reply(case=Message.objects.get().case, author_user=agent, body="Hi"))
        assert reply.status == DeliveryStatus.FAILED
        assert reply.error.startswith("The mail server refused the address jane.doe@example.org (550 5.1.1")
        refusing.mode = "tempfail_recipient"
        again = _deliver(send_reply(case=reply.case, author_user=agent, body="Hi again"))
        assert again.status == DeliveryStatus.QUEUED and again.next_attempt_at is not None
        assert again.error.startswith("Retrying (attempt 1 failed): The mail server") and "451" in again.error
    finally:
        refusing.stop()


def test_unreachable_smtp_server_is_retried(client, agent):
    from tests.channels_adapters.email_support import free_port

    channel = email_channel(smtp_port=free_port())  # nothing listens there
    relay(client, channel, build_mail())
    reply = _deliver(send_reply(case=Message.objects.get().case, author_user=agent, body="Hi"))
    assert reply.status == DeliveryStatus.QUEUED and "Could not reach the mail server" in reply.error


def test_starttls_required_by_the_channel_but_not_offered_is_a_configuration_error(client, agent, smtp):
    channel = email_channel(smtp_port=smtp.port)
    channel.settings["smtp_security"] = "starttls"
    channel.save()
    relay(client, channel, build_mail())
    reply = _deliver(send_reply(case=Message.objects.get().case, author_user=agent, body="Hi"))
    assert reply.status == DeliveryStatus.FAILED
    assert "does not offer what the channel asks for" in reply.error and "'smtp_security'" in reply.error


# IMAP polling against dovecot -----------------------------------------------------------


def _poll(channel):
    from channels_adapters.email.imap import imap_poll

    result = imap_poll(channel=channel)
    for pk in result.stored:
        inbound_event_process(event_id=pk)
    return result


def _flags(dovecot, folder="INBOX"):
    conn = dovecot.client()
    try:
        conn.select(folder)
        typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
        return [item for item in data if item]
    finally:
        conn.logout()


def test_imap_poll_fetches_new_mail_once_and_flags_it_seen(dovecot):
    channel = email_channel(imap_port=dovecot.port)
    dovecot.append(fixture_bytes("email", "plain_reply_quote.eml"))
    dovecot.append(fixture_bytes("email", "attachments.eml"))
    first = _poll(channel)
    assert first.fetched == 2 and len(first.stored) == 2
    assert Message.objects.count() == 2
    assert all(b"\\Seen" in f for f in _flags(dovecot))
    state = MailboxState.objects.get(channel=channel, folder="INBOX")
    assert state.uidvalidity == first.uidvalidity and state.last_uid >= 2
    # Nothing new: nothing fetched.
    assert _poll(channel).fetched == 0
    dovecot.append(fixture_bytes("email", "html_only.eml"))
    assert _poll(channel).fetched == 1
    assert Message.objects.count() == 3
    event = InboundEvent.objects.filter(channel=channel).order_by("-pk").first()
    assert event.headers["X-Imap-Folder"] == "INBOX" and event.content_type == "message/rfc822"


def test_the_same_mail_polled_twice_is_one_message(dovecot):
    channel = email_channel(imap_port=dovecot.port)
    raw = fixture_bytes("email", "windows1252.eml")
    dovecot.append(raw)
    dovecot.append(raw)  # delivered twice (a second copy in the mailbox)
    result = _poll(channel)
    assert result.fetched == 2 and result.duplicates == 1
    assert Message.objects.count() == 1
    # The server rebuilt the mailbox: a new UIDVALIDITY makes us read everything again.
    MailboxState.objects.filter(channel=channel).update(uidvalidity=1)
    resync = _poll(channel)
    assert resync.resynced and resync.fetched == 2 and resync.stored == []
    assert Message.objects.count() == 1
    assert MailboxState.objects.get(channel=channel).uidvalidity == resync.uidvalidity


def test_first_poll_leaves_the_mailbox_read_history_alone(dovecot):
    channel = email_channel(imap_port=dovecot.port)
    dovecot.append(fixture_bytes("email", "iso8859_1.eml"), flags=r"(\Seen)")  # read before we came
    dovecot.append(fixture_bytes("email", "html_only.eml"))
    dovecot.append(fixture_bytes("email", "windows1252.eml"), flags=r"(\Seen)")
    first = _poll(channel)
    assert first.fetched == 1
    assert list(Message.objects.values_list("external_id", flat=True)) == ["<html-only-0002@example.net>"]
    # From then on every new mail counts, even one somebody already opened in a mail client.
    dovecot.append(fixture_bytes("email", "forwarded.eml"), flags=r"(\Seen)")
    assert _poll(channel).fetched == 1
    assert Message.objects.count() == 2


def test_processed_mail_is_moved_when_a_folder_is_configured(dovecot):
    channel = email_channel(imap_port=dovecot.port)
    channel.settings["imap_processed_folder"] = "Processed"
    channel.save()
    dovecot.append(fixture_bytes("email", "iso8859_1.eml"))
    _poll(channel)
    assert _flags(dovecot, "INBOX") == []
    assert len(_flags(dovecot, "Processed")) == 1
    assert Message.objects.get().body.startswith("Bonjour")


def test_imap_auto_reply_and_bounce_are_handled_like_relayed_ones(dovecot):
    channel = email_channel(imap_port=dovecot.port)
    sent = outbound(
        channel, external_id="<hd.4242.0123456789abcdef@support.example.com>", address="n@example.org"
    )
    dovecot.append(fixture_bytes("email", "auto_reply.eml"))
    dovecot.append(fixture_bytes("email", "bounce_dsn.eml"))
    _poll(channel)
    sent.refresh_from_db()
    assert sent.status == DeliveryStatus.FAILED
    assert Message.objects.count() == 1 and Case.objects.count() == 1


def test_imap_login_failure_is_reported_in_plain_words(dovecot):
    from channels_adapters.email.imap import ImapPollError, imap_poll

    channel = email_channel(imap_port=dovecot.port, imap_password="wrong")
    with pytest.raises(ImapPollError, match="refused the login for 'support': check the user and password"):
        imap_poll(channel=channel)
    assert "refused the login" in MailboxState.objects.get(channel=channel).last_error


def test_imap_security_setting_is_honoured(dovecot):
    from channels_adapters.email.imap import ImapPollError, imap_poll

    channel = email_channel(imap_port=dovecot.port)
    channel.settings["imap_security"] = "starttls"  # this dovecot offers no TLS at all
    channel.save()
    with pytest.raises(ImapPollError, match=r"Could not reach the IMAP server 127\.0\.0\.1:\d+ \(starttls\)"):
        imap_poll(channel=channel)


def test_beat_task_polls_each_email_channel(dovecot):
    from channels_adapters.email.tasks import email_imap_poll_channel
    from helpdesk.celery_app import app

    app.loader.import_default_modules()
    assert "channels_adapters.email.tasks.email_imap_poll_all" in app.tasks
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["email-imap-poll"]["task"] == (
        "channels_adapters.email.tasks.email_imap_poll_all"
    )
    channel = email_channel(imap_port=dovecot.port)
    dovecot.append(fixture_bytes("email", "forwarded.eml"))
    assert email_imap_poll_channel(channel.pk) == {"stored": 1, "duplicates": 0}
    assert InboundEvent.objects.filter(channel=channel).count() == 1


@pytest.mark.django_db(transaction=True)
def test_mail_in_and_out_through_the_worker(live_worker, dovecot, smtp, agent):
    """The beat task's body queues a poll, the worker polls dovecot and processes the mail,
    then the agent's reply leaves through the worker to the SMTP server."""
    from channels_adapters.email.tasks import email_imap_poll_all
    from tests.conftest import wait_for

    channel = email_channel(imap_port=dovecot.port, smtp_port=smtp.port)
    dovecot.append(fixture_bytes("email", "plain_reply_quote.eml"))
    assert email_imap_poll_all() == 1
    inbound = wait_for(lambda: Message.objects.filter(channel=channel, direction=Direction.IN).first())
    assert inbound.meta["message_id"] == "<CAJane-reply-0001@mail.example.org>"

    reply = send_reply(case=inbound.case, author_user=agent, body="On its way.")
    sent = wait_for(lambda: Message.objects.filter(pk=reply.pk, status=DeliveryStatus.SENT).first())
    wait_for(lambda: smtp.received)
    assert smtp.received[0].message["In-Reply-To"] == inbound.external_id
    assert smtp.received[0].message["Message-ID"] == sent.external_id
