"""Campaigns: segment, throttle, pause/resume, and the monitoring funnel on a fixed scenario."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from outreach import campaigns
from outreach.models import Campaign, CampaignMessage, CampaignStep, Outreach, OutreachStep
from outreach.monitoring import campaigns_funnel
from outreach.tasks import outreach_tick
from tests.channels_adapters.twilio_support import OUR_NUMBER, message_resource
from tests.factories import CaseFactory, CustomerFactory, IdentityFactory, UserFactory
from tests.outreach.support import TWILIO_PREFIX, deliver_queued, sends, sms_inbound, sms_status
from tests.provider_server import Reply

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


_serial = iter(range(1, 10**6))


def _customers(n, **attributes):
    people = []
    for _ in range(n):
        i = next(_serial)
        customer = CustomerFactory(name=f"Customer {i}", attributes=attributes)
        phone = f"+3460{i:07d}"
        IdentityFactory(customer=customer, kind="phone", address=phone)
        IdentityFactory(customer=customer, kind="email", address=f"c{i}@example.com")
        people.append((customer, phone))
    return people


def _campaign(world, *, chain, segment=None, throttle=None, **kwargs):
    campaign = Campaign.objects.create(
        name="Black Friday", segment=segment or {}, throttle=throttle or {}, default_language="es", **kwargs
    )
    CampaignMessage.objects.create(
        campaign=campaign, language="es", body="¡Tu pedido ha salido!", subject="Pedido"
    )
    CampaignMessage.objects.create(
        campaign=campaign, language="en", body="Your order shipped!", subject="Order"
    )
    for number, (channel, advance_on, wait) in enumerate(chain, start=1):
        CampaignStep.objects.create(
            campaign=campaign, number=number, channel=channel, advance_on=advance_on, wait_minutes=wait
        )
    return campaign


def _sids(provider, n):
    provider.script(
        *[Reply(201, message_resource(f"SMc{i}", to="+34600000000", from_=OUR_NUMBER)) for i in range(n)],
        path=TWILIO_PREFIX,
    )


def test_segment_picks_customers_by_attribute_label_channel_and_last_contact(world):
    pro = _customers(2, plan="pro")
    _customers(1, plan="free")
    vip_case = CaseFactory(thread=pro[0][0].thread)
    vip_case.labels.create(name="vip")
    assert set(campaigns.segment_customers({"attributes": {"plan": "pro"}})) == {c for c, _ in pro}
    assert list(campaigns.segment_customers({"labels": ["vip"]})) == [pro[0][0]]
    # The world's customer has a phone too; the segment of "whatsapp" is who has a phone.
    assert campaigns.segment_customers({"channels": ["whatsapp"], "attributes": {"plan": "pro"}}).count() == 2
    with pytest.raises(Exception, match="Unknown segment keys"):
        campaigns.segment_customers({"plan": "pro"})


def test_language_picks_the_text_and_planning_happens_once(world):
    people = _customers(2, plan="pro")
    people[1][0].attributes = {"plan": "pro", "language": "en"}
    people[1][0].save()
    campaign = _campaign(world, chain=[(world["sms"], "failed", 0)], segment={"attributes": {"plan": "pro"}})
    assert campaigns.campaign_plan(campaign=campaign) == 2
    assert campaigns.campaign_plan(campaign=campaign) == 0
    bodies = dict(Outreach.objects.values_list("customer_id", "body"))
    assert bodies == {people[0][0].pk: "¡Tu pedido ha salido!", people[1][0].pk: "Your order shipped!"}
    assert OutreachStep.objects.count() == 2


def test_throttle_is_respected_per_channel(world):
    _customers(5, plan="pro")
    _sids(world["provider"], 5)
    campaign = _campaign(
        world,
        chain=[(world["sms"], "failed", 0)],
        segment={"attributes": {"plan": "pro"}},
        throttle={"sms": 2},
    )
    with time_machine.travel(T0, tick=False):
        campaigns.campaign_launch(campaign=campaign)
        outreach_tick()
    for second in (1, 2, 3):
        with time_machine.travel(T0 + timedelta(seconds=second), tick=False):
            outreach_tick()
    claimed = list(OutreachStep.objects.values_list("claimed_at", flat=True))
    assert all(claimed) and len(claimed) == 5
    per_second = Counter(c.replace(microsecond=0) for c in claimed)
    assert per_second == {T0: 2, T0 + timedelta(seconds=1): 2, T0 + timedelta(seconds=2): 1}
    deliver_queued()
    assert len(sends(world["provider"], TWILIO_PREFIX)) == 5


def test_pause_holds_the_sends_and_resume_goes_on(world):
    _customers(3, plan="pro")
    _sids(world["provider"], 3)
    campaign = _campaign(
        world,
        chain=[(world["sms"], "failed", 0)],
        segment={"attributes": {"plan": "pro"}},
        throttle={"sms": 1},
    )
    with time_machine.travel(T0, tick=False):
        campaigns.campaign_launch(campaign=campaign)
        outreach_tick()
        campaign.refresh_from_db()
        campaigns.campaign_pause(campaign=campaign)
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        outreach_tick()
    assert OutreachStep.objects.exclude(message=None).count() == 1
    campaign.refresh_from_db()
    campaigns.campaign_resume(campaign=campaign)
    with time_machine.travel(T0 + timedelta(seconds=6), tick=False):
        outreach_tick()
    with time_machine.travel(T0 + timedelta(seconds=7), tick=False):
        outreach_tick()
    assert OutreachStep.objects.exclude(message=None).count() == 3


def test_campaign_funnel_figures_are_exact_on_a_fixed_scenario(
    world, client, settings, django_capture_on_commit_callbacks
):
    sms, email = world["sms"], world["email"]
    sms.settings = {"cost_per_message": "0.05"}
    sms.save()
    people = _customers(4, plan="pro")
    _customers(1, plan="free")  # outside the segment
    _sids(world["provider"], 4)
    campaign = _campaign(
        world,
        chain=[(sms, "undelivered", 10), (email, "failed", 0)],
        segment={"attributes": {"plan": "pro"}},
        throttle={"sms": 100},
    )
    (c1, p1), (c2, p2), (c3, p3), (c4, p4) = people
    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        campaigns.campaign_launch(campaign=campaign, at=T0 + timedelta(seconds=2))
        assert campaigns.campaign_plan(campaign=campaign) == 4
    with (
        time_machine.travel(T0 + timedelta(seconds=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        # c4 says STOP on SMS after planning, before the campaign is released.
        sms_inbound(client, sms, body="STOP", sid="SMstop4", phone=p4)
    # STOP is also a reply: c4's planned outreach stopped. The funnel counts an opt-out, not a send.
    with (
        time_machine.travel(T0 + timedelta(seconds=2), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        outreach_tick()
        deliver_queued()
    steps = {
        s.outreach.customer_id: s
        for s in OutreachStep.objects.filter(number=1).select_related("message", "outreach")
    }
    with (
        time_machine.travel(T0 + timedelta(minutes=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        sms_status(
            client,
            sms,
            message=steps[c1.pk].message,
            sid=steps[c1.pk].message.external_id,
            status="delivered",
            phone=p1,
        )
        sms_status(
            client,
            sms,
            message=steps[c2.pk].message,
            sid=steps[c2.pk].message.external_id,
            status="undelivered",
            error_code="30003",
            phone=p2,
        )
        sms_inbound(client, sms, body="Thanks!", sid="SMreply3", phone=p3)
    deliver_queued()  # c2's email, written when the undelivered callback committed
    boss = UserFactory(username="boss", role="supervisors")
    client.force_login(boss)
    [block] = campaigns_funnel(campaigns=[campaign])
    by_kind = {e["channel"].kind: e for e in block["channels"]}
    s, e = by_kind["sms"], by_kind["email"]
    assert (s["sent"], s["delivered"], s["read"], s["replied"], s["fallbacks"], s["failed"]) == (
        2,
        1,
        0,
        1,
        1,
        1,
    )
    assert s["opt_outs"] == 1 and s["skipped"] == 0
    assert s["cost"] == Decimal("0.10")
    assert list(s["failures"].values()) == [1]
    assert (e["sent"], e["delivered"], e["fallbacks"], e["failed"], e["cost"]) == (1, 0, 0, 0, Decimal(0))
    assert block["totals"]["sent"] == 3
    assert len(world["smtp"].received) == 1


def _sent_campaign(world, n_customers):
    _customers(n_customers, plan="pro")
    _sids(world["provider"], n_customers)
    campaign = _campaign(world, chain=[(world["sms"], "failed", 0)], segment={"attributes": {"plan": "pro"}})
    campaigns.campaign_launch(campaign=campaign)
    outreach_tick()
    deliver_queued()
    return campaign


@pytest.mark.parametrize("n_customers", [1, 6])
def test_monitoring_page_is_for_supervisors_and_its_query_count_is_flat(
    world, client, django_assert_max_num_queries, n_customers
):
    campaign = _sent_campaign(world, n_customers)
    client.force_login(UserFactory(username="agent-only"))
    assert client.get("/outreach/campaigns/").status_code == 403
    assert client.get("/outreach/campaigns/export.csv").status_code == 403
    client.force_login(UserFactory(username="boss", role="supervisors"))
    with django_assert_max_num_queries(10):
        page = client.get("/outreach/campaigns/")
    assert page.status_code == 200
    assert f'data-campaign-id="{campaign.pk}"' in page.content.decode()
    with django_assert_max_num_queries(10):
        export = client.get("/outreach/campaigns/export.csv")
    lines = export.content.decode().strip().splitlines()
    assert lines[0].startswith("campaign_id,campaign,status,channel,channel_kind,sent,delivered")
    assert lines[1].split(",")[5] == str(n_customers)


def test_supervisor_pauses_and_resumes_from_the_monitoring_page(world, client):
    campaign = _campaign(world, chain=[(world["sms"], "failed", 0)], segment={"attributes": {"plan": "pro"}})
    campaigns.campaign_launch(campaign=campaign, at=T0 + timedelta(days=30))
    client.force_login(UserFactory(username="boss", role="supervisors"))
    assert client.post(f"/outreach/campaigns/{campaign.pk}/pause/").status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    client.post(f"/outreach/campaigns/{campaign.pk}/resume/")
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
