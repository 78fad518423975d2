import re
from datetime import timedelta

import pytest
from django.core import signing

from channels_adapters.base import Sender
from conversations.cases import set_case_status
from conversations.delivery import message_deliver
from conversations.models import Author, Case, CaseStatus, DeliveryStatus, Message
from conversations.services import receive_inbound, send_reply
from kpis.models import SurveyAnswer, SurveyCampaign, SurveyRequest
from kpis.selectors import kpi_report
from kpis.services import (
    survey_campaigns_run_due,
    survey_link_token,
    survey_request_send,
    survey_score_parse,
    surveys_send_due,
)
from tests.factories import ChannelFactory, UserFactory, provider_accepts
from tests.kpis.factories import at

pytestmark = pytest.mark.django_db

ANA = Sender("email", "ana@example.com", "Ana Silva")
T0 = at("2026-03-02T09:00")


@pytest.fixture
def channel(provider):
    return ChannelFactory(
        name="Web API",
        credentials={"secret": "api-secret", "callback_url": provider.url + "/callback"},
        settings={"survey": {"csat": {"enabled": True, "cooldown_days": 30}}},
    )


@pytest.fixture
def agent():
    return UserFactory(username="ana-agent", first_name="Ana")


def resolve_a_case(channel, agent, on_commit, time_machine, *, sender=ANA, ext="m1", at_time=T0):
    time_machine.move_to(at_time, tick=False)
    with on_commit(execute=True):
        case = receive_inbound(
            channel=channel, sender=sender, external_id=ext, text="My parcel?"
        ).message.case
    case.assignee = agent
    case.save(update_fields=["assignee"])
    time_machine.move_to(at_time + timedelta(minutes=5), tick=False)
    # The provider accepts it: only a reply that reached the customer counts for FCR (issue 18).
    provider_accepts(send_reply(case=case, author_user=agent, body="It is on its way."))
    time_machine.move_to(at_time + timedelta(minutes=10), tick=False)
    with on_commit(execute=True):
        set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)
    return Case.objects.get(pk=case.pk)


def customer_says(channel, text, ext, on_commit, sender=ANA):
    with on_commit(execute=True):
        return receive_inbound(channel=channel, sender=sender, external_id=ext, text=text).message


@pytest.mark.parametrize(
    "kind, text, score",
    [
        ("csat", "4", 4),
        ("csat", " 5 ", 5),
        ("csat", "4/5", 4),
        ("csat", "3 / 5.", 3),
        ("csat", "excellent", None),
        ("csat", "6", None),
        ("csat", "0", None),
        ("csat", "4/10", None),
        ("csat", "4 stars", None),
        ("nps", "0", 0),
        ("nps", "10/10", 10),
        ("nps", "11", None),
        ("ces", "7", 7),
        ("ces", "8", None),
    ],
)
def test_score_parsing(kind, text, score):
    assert survey_score_parse(kind=kind, text=text) == score


def test_resolution_sends_csat_on_the_case_channel_as_a_bot_message(
    channel, agent, provider, django_capture_on_commit_callbacks, time_machine
):
    case = resolve_a_case(channel, agent, django_capture_on_commit_callbacks, time_machine)
    request = SurveyRequest.objects.get()
    assert (request.kind, request.case, request.channel, request.agent) == ("csat", case, channel, agent)
    assert request.status == SurveyRequest.Status.SCHEDULED
    survey_request_send(request_id=request.pk)  # what the queued task does
    request.refresh_from_db()
    assert request.status == SurveyRequest.Status.SENT
    message = request.message
    assert message.author == Author.BOT and message.channel == channel and message.case == case
    assert message.body.startswith("How satisfied are you") and "1 (very unhappy) to 5" in message.body
    assert message.meta["quick_replies"] == ["1", "2", "3", "4", "5"]
    # The real API client delivers it to the channel's callback.
    assert message_deliver(message_id=message.pk).outcome == "sent"
    assert provider.requests[-1].json()["text"] == message.body
    assert Message.objects.get(pk=message.pk).status == DeliveryStatus.SENT
    # A bot message is not an agent message: the FCR of the case stays one message.
    report = kpi_report(start=T0.date(), end=T0.date() + timedelta(days=1))
    assert report["totals"]["fcr"] == 1.0


def test_a_score_reply_is_the_answer_and_leaves_the_case_resolved(
    channel, agent, django_capture_on_commit_callbacks, time_machine
):
    case = resolve_a_case(channel, agent, django_capture_on_commit_callbacks, time_machine)
    survey_request_send(request_id=SurveyRequest.objects.get().pk)
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    reply = customer_says(channel, "4/5", "m2", django_capture_on_commit_callbacks)
    answer = SurveyAnswer.objects.get()
    assert (answer.score, answer.kind, answer.case, answer.agent, answer.channel) == (
        4,
        "csat",
        case,
        agent,
        channel,
    )
    assert answer.customer == case.thread.customer and answer.message == reply and answer.via == "message"
    case.refresh_from_db()
    # The core reopened the case for the reply; a score puts it back as it was.
    assert case.status == CaseStatus.RESOLVED and case.reopen_count == 0
    assert case.resolved_at == T0 + timedelta(minutes=10)
    assert SurveyRequest.objects.get().status == SurveyRequest.Status.ANSWERED
    report = kpi_report(start=T0.date(), end=T0.date() + timedelta(days=1))
    assert report["totals"]["csat"] == 1.0 and report["totals"]["fcr"] == 1.0
    # A second number is a normal message: the survey is answered once.
    customer_says(channel, "5", "m3", django_capture_on_commit_callbacks)
    assert SurveyAnswer.objects.count() == 1


def test_a_reply_that_is_not_a_score_stays_a_normal_message(
    channel, agent, django_capture_on_commit_callbacks, time_machine
):
    case = resolve_a_case(channel, agent, django_capture_on_commit_callbacks, time_machine)
    survey_request_send(request_id=SurveyRequest.objects.get().pk)
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    message = customer_says(channel, "excellent", "m2", django_capture_on_commit_callbacks)
    assert SurveyAnswer.objects.count() == 0
    assert Message.objects.get(pk=message.pk).body == "excellent"
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN and case.reopen_count == 1  # the core's normal reopen
    report = kpi_report(start=T0.date(), end=T0.date() + timedelta(days=1))
    assert report["totals"]["csat"] is None


def test_one_survey_per_customer_within_the_cool_down(
    channel, agent, django_capture_on_commit_callbacks, time_machine
):
    resolve_a_case(channel, agent, django_capture_on_commit_callbacks, time_machine)
    # Eight days later (past the reopen window) a new case, resolved: still within 30 days.
    resolve_a_case(
        channel,
        agent,
        django_capture_on_commit_callbacks,
        time_machine,
        ext="m9",
        at_time=T0 + timedelta(days=8),
    )
    assert Case.objects.count() == 2 and SurveyRequest.objects.count() == 1
    resolve_a_case(
        channel,
        agent,
        django_capture_on_commit_callbacks,
        time_machine,
        ext="m10",
        at_time=T0 + timedelta(days=31),
    )
    assert SurveyRequest.objects.count() == 2


def test_no_survey_when_disabled_or_nobody_answered(django_capture_on_commit_callbacks, time_machine, agent):
    quiet = ChannelFactory(settings={})
    resolve_a_case(quiet, agent, django_capture_on_commit_callbacks, time_machine)
    assert SurveyRequest.objects.count() == 0
    loud = ChannelFactory(settings={"survey": {"csat": {"enabled": True}}})
    time_machine.move_to(T0 + timedelta(days=10), tick=False)
    bob = Sender("email", "bob@example.com", "Bob")
    with django_capture_on_commit_callbacks(execute=True):
        case = receive_inbound(channel=loud, sender=bob, external_id="b1", text="hi").message.case
        set_case_status(case=case, status=CaseStatus.RESOLVED)
    assert SurveyRequest.objects.count() == 0  # nobody talked to Bob: nothing to rate


def test_delay_and_text_in_the_channel_language(
    provider, agent, django_capture_on_commit_callbacks, time_machine
):
    channel = ChannelFactory(
        credentials={"secret": "s", "callback_url": provider.url},
        settings={
            "survey": {
                "csat": {"enabled": True, "delay_minutes": 60, "text": "{name}, ¿qué nota nos das? (1-5)"},
                "nps": {"enabled": True, "delay_minutes": 60, "link": True},
            }
        },
    )
    resolve_a_case(channel, agent, django_capture_on_commit_callbacks, time_machine)
    assert SurveyRequest.objects.filter(status=SurveyRequest.Status.SCHEDULED).count() == 2
    time_machine.move_to(T0 + timedelta(minutes=69), tick=False)
    assert surveys_send_due() == 0
    time_machine.move_to(T0 + timedelta(minutes=71), tick=False)
    assert surveys_send_due() == 2
    csat = SurveyRequest.objects.get(kind="csat").message
    assert csat.body == "Ana, ¿qué nota nos das? (1-5)"
    nps = SurveyRequest.objects.get(kind="nps").message
    assert re.search(r"Or answer here: http://localhost:8000/survey/[^/]+/$", nps.body)
    assert nps.meta["quick_replies"] == [str(n) for n in range(11)]


def test_a_refused_send_is_kept_with_the_reason(
    channel, agent, django_capture_on_commit_callbacks, time_machine
):
    resolve_a_case(channel, agent, django_capture_on_commit_callbacks, time_machine)
    channel.is_active = False
    channel.save()
    request = survey_request_send(request_id=SurveyRequest.objects.get().pk)
    assert request.status == SurveyRequest.Status.FAILED and "switched off" in request.error


def test_signed_one_time_link(client, channel, agent, django_capture_on_commit_callbacks, time_machine):
    resolve_a_case(channel, agent, django_capture_on_commit_callbacks, time_machine)
    request = survey_request_send(request_id=SurveyRequest.objects.get().pk)
    url = f"/survey/{survey_link_token(request=request)}/"
    page = client.get(url)
    assert page.status_code == 200 and b"Ana, how did we do?" in page.content
    assert client.post(url, {"score": "9"}).status_code == 400  # not on a 1-5 scale
    assert client.post(url, {"score": "5"}).status_code == 200
    answer = SurveyAnswer.objects.get()
    assert (answer.score, answer.via, answer.agent) == (5, "link", agent)
    again = client.post(url, {"score": "1"})
    assert b"Thank you" in again.content and SurveyAnswer.objects.get().score == 5
    forged = signing.dumps(request.pk, salt="not-ours")
    assert client.get(f"/survey/{forged}/").status_code == 404
    time_machine.move_to(T0 + timedelta(days=15), tick=False)
    expired = client.get(url)
    assert expired.status_code == 404 and b"expired" in expired.content


def test_campaign_surveys_a_sample_once_per_period(
    provider, agent, django_capture_on_commit_callbacks, time_machine
):
    channel = ChannelFactory(credentials={"secret": "s", "callback_url": provider.url})
    for i in range(3):
        who = Sender("email", f"c{i}@example.com", f"Customer {i}")
        resolve_a_case(
            channel, agent, django_capture_on_commit_callbacks, time_machine, sender=who, ext=f"x{i}"
        )
    campaign = SurveyCampaign.objects.create(name="Quarterly NPS", kind="nps", sample_size=2, every_days=90)
    time_machine.move_to(T0 + timedelta(days=1), tick=False)
    with django_capture_on_commit_callbacks(execute=False):
        assert survey_campaigns_run_due() == 1
    requests = SurveyRequest.objects.filter(campaign=campaign)
    assert requests.count() == 2 and len({r.customer_id for r in requests}) == 2
    for request in requests:
        survey_request_send(request_id=request.pk)
    assert SurveyRequest.objects.filter(campaign=campaign, status="sent").count() == 2
    time_machine.move_to(T0 + timedelta(days=30), tick=False)
    assert survey_campaigns_run_due() == 0  # not due before 90 days


def test_link_of_a_survey_that_never_went_out_is_closed(
    client, channel, agent, django_capture_on_commit_callbacks, time_machine
):
    resolve_a_case(channel, agent, django_capture_on_commit_callbacks, time_machine)
    request = SurveyRequest.objects.get()  # still scheduled: nobody was asked yet
    response = client.post(f"/survey/{survey_link_token(request=request)}/", {"score": "5"})
    assert response.status_code == 404 and b"not open" in response.content
    assert SurveyAnswer.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_survey_to_the_provider(live_worker, provider):
    from tests.conftest import wait_for

    channel = ChannelFactory(
        credentials={"secret": "api-secret", "callback_url": provider.url + "/callback"},
        settings={"survey": {"csat": {"enabled": True}}},
    )
    agent = UserFactory(username="worker-agent")
    case = receive_inbound(channel=channel, sender=ANA, external_id="w1", text="Hi").message.case
    send_reply(case=case, author_user=agent, body="Hello Ana")
    set_case_status(case=case, status=CaseStatus.RESOLVED, by=agent)  # commits: the hooks run
    request = wait_for(lambda: SurveyRequest.objects.filter(status=SurveyRequest.Status.SENT).first())
    texts = wait_for(lambda: [r.json()["text"] for r in provider.requests if len(provider.requests) >= 2])
    assert texts[0] == "Hello Ana" and texts[1].startswith("How satisfied are you")
    wait_for(lambda: Message.objects.get(pk=request.message_id).status == DeliveryStatus.SENT)
