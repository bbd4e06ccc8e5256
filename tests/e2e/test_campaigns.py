"""Campaigns end to end on both databases: usage in over the API, targets, queued cards, delivery, "stop these"."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from bot.app import SESSIONS
from bot.campaigns_file import parse_campaigns
from bot.engagement.asking import AskPolicy, in_sample
from bot.engagement.budget import AttentionBudget
from bot.policies import campaign_config
from bot.usecases.campaign_report import campaign_report
from bot.usecases.campaigns import CampaignConfig, Campaigns
from storage.models import CampaignOptOut, CampaignTouch, OutboxMessage, PendingAlert, UsageProfile, User
from storage.uow import UnitOfWork
from tests.conftest import Harness
from tests.e2e.test_nps_flow import invoke, post_invoke, table
from tests.e2e.test_usage_ingest import AUTH, post_events
from tests.support.activities import TENANT, USER, install, message
from tests.support.connector import card_of
from tests.support.inspect import card_texts
from tests.support.usage import event

OTHER = "aaaaaaaa-0000-0000-0000-0000000000b2"

ADOPTION_ONLY = """
features:
  report_created: {label: {en: Create a report, de: Einen Bericht erstellen}, link: "https://contoso.example/reports/new"}
campaigns:
  - {id: first-report, kind: adoption, milestone: report_created, within_days: 7, cooldown_days: 14}
"""


def campaigns(harness: Harness, text: str, policy: AskPolicy | None = None) -> Campaigns:
    sessions = harness.app[SESSIONS]
    config = campaign_config(harness.settings, parse_campaigns(text))
    if policy is not None:
        config = CampaignConfig(config.campaigns, policy, config.product_name)
    return Campaigns(lambda: UnitOfWork(sessions), config)


async def install_user(harness: Harness, aad: str, locale: str = "en-US") -> None:
    response = await harness.post(install(service_url=harness.connector.service_url, aad_object_id=aad, locale=locale))
    assert response.status == 200


async def active_on(harness: Harness, aad: str, *days_after_now: int, name: str = "app_opened") -> None:
    """Usage events on the given days relative to the harness clock (which may then move on)."""
    start = harness.clock()
    events = [event(name, start + timedelta(days=d), user=aad) for d in days_after_now]
    response = await post_events(harness, events)
    assert (await response.json())["rejected"] == 0


async def test_an_adoption_nudge_goes_from_usage_to_a_delivered_card(harness: Harness) -> None:
    await install_user(harness, USER, locale="de-DE")  # Berlin time zone; installed now (Tue 24 Nov 10:00 UTC)
    harness.clock.advance(days=20)  # Mon 14 Dec 10:00 UTC, 11:00 in Berlin
    await active_on(harness, USER, -5, -4, -2, -1)  # 4 of the last 14 days, never `report_created`

    plan = await campaigns(harness, ADOPTION_ONLY).plan(harness.clock())
    assert [(t.campaign_id, t.outcome.value, t.reason) for t in plan.targets] == [
        (
            "first-report",
            "send",
            "active 4 of last 14 days, milestone `report_created` not reached 20 days after install",
        )
    ]
    report = await campaigns(harness, ADOPTION_ONLY).run(harness.clock())
    assert (report.queued, report.held_out) == (1, 0)
    [touch] = await table(harness, CampaignTouch)
    assert (touch.kind, touch.step, touch.holdout) == ("adoption", "nudge-1", False)
    [row] = await table(harness, OutboxMessage)
    assert (row.kind, row.status, row.id) == ("adoption", "queued", touch.outbox_id)

    welcomed = len(harness.connector.sent())  # the install's welcome reply
    await harness.deliver()
    [sent] = harness.connector.sent()[welcomed:]
    card = card_of(sent)
    texts = card_texts(card)
    assert "Ihr nächster Schritt in Contoso Insights: Einen Bericht erstellen" in texts
    assert any(
        a.get("url") == "https://contoso.example/reports/new" for a in card["body"][2]["actions"]
    )  # the deep link
    assert (await table(harness, OutboxMessage))[0].status == "sent"

    # the same run again queues nothing: the step is done and the cooldown runs
    again = await campaigns(harness, ADOPTION_ONLY).run(harness.clock())
    assert again.queued == 0
    assert len(await table(harness, OutboxMessage)) == 1


async def test_stop_these_opts_out_of_the_kind_at_once_and_undo_restores_it(harness: Harness) -> None:
    roomy = AskPolicy(budget=AttentionBudget(10, 3, 40, 30))  # room for two queued messages in this test
    two_kinds = """
campaigns:
  - {id: tips-a, kind: onboarding, days: [0]}
  - {id: tips-b, kind: onboarding, days: [0]}
  - {id: back, kind: reengagement, inactive_days: 1}
"""
    await install_user(harness, USER)
    runner = campaigns(harness, two_kinds, roomy)
    assert (await runner.run(harness.clock())).queued == 1  # tips-a (one message per person per run)
    assert (await runner.run(harness.clock())).queued == 1  # tips-b
    touches = await table(harness, CampaignTouch)
    assert [t.campaign_id for t in touches] == ["tips-a", "tips-b"]

    card = await post_invoke(harness, invoke(harness, "nurture.stop", {"touch": touches[0].id}))
    assert "Got it — no more of these" in card_texts(card)
    assert "onboarding tips" in card_texts(card)
    assert card["body"][-1]["actions"][0]["verb"] == "nurture.resume"
    # honoured immediately: both queued onboarding messages are cancelled before any was sent
    assert {r.status for r in await table(harness, OutboxMessage)} == {"cancelled"}
    welcomed = len(harness.connector.sent())
    await harness.deliver()
    assert len(harness.connector.sent()) == welcomed
    [optout] = await table(harness, CampaignOptOut)
    assert optout.kind == "onboarding"

    # re-engagement is another kind: still allowed; onboarding is blocked with the reason
    harness.clock.advance(days=2)
    plan = await runner.plan(harness.clock())
    outcomes = {(t.campaign_id, t.outcome.value, t.blocked_by) for t in plan.targets}
    assert ("back", "send", None) in outcomes

    card = await post_invoke(harness, invoke(harness, "nurture.resume", {"touch": touches[0].id}))
    assert "Back on" in card_texts(card)
    assert await table(harness, CampaignOptOut) == []


async def test_stop_is_refused_for_someone_else_and_for_bad_data(harness: Harness) -> None:
    await install_user(harness, USER)
    await install_user(harness, OTHER)
    await campaigns(harness, "campaigns: [{id: tips, kind: onboarding, days: [0]}]").run(harness.clock())
    touch = next(t for t in await table(harness, CampaignTouch) if t.aad_object_id == USER)
    cases: list[tuple[Any, str, str]] = [
        ({"touch": touch.id}, OTHER, "This message was sent to someone else"),
        ({"touch": "first"}, USER, "something I couldn't read"),
        (None, USER, "something I couldn't read"),
        ({"touch": 10**9}, USER, "no longer known"),
        ({"touch": 2**63}, USER, "something I couldn't read"),  # beyond any row id: refused before the database
    ]
    for data, aad, text in cases:
        card = await post_invoke(harness, invoke(harness, "nurture.stop", data, aad=aad))
        assert text in card_texts(card), (data, card_texts(card))
    assert await table(harness, CampaignOptOut) == []
    assert {r.status for r in await table(harness, OutboxMessage)} == {"queued"}


async def test_people_who_typed_stop_or_uninstalled_get_nothing(harness: Harness) -> None:
    await install_user(harness, USER)
    await install_user(harness, OTHER)
    assert (await harness.post(message("stop", service_url=harness.connector.service_url))).status == 200
    gone = install("remove", service_url=harness.connector.service_url, aad_object_id=OTHER)
    assert (await harness.post(gone)).status == 200
    plan = await campaigns(harness, "campaigns: [{id: tips, kind: onboarding, days: [0]}]").plan(harness.clock())
    assert sorted((t.aad_object_id, t.outcome.value, t.blocked_by or "") for t in plan.targets) == [
        (USER, "blocked", "opted out of all messages"),
        (OTHER, "blocked", "not reachable (not installed, no personal chat, or Teams refused the last message)"),
    ]
    assert (
        await campaigns(harness, "campaigns: [{id: tips, kind: onboarding, days: [0]}]").run(harness.clock())
    ).queued == 0


async def test_holdout_is_recorded_not_sent_and_uplift_is_measured(harness: Harness) -> None:
    quiet = "campaigns: [{id: back, kind: reengagement, inactive_days: 30, holdout_percent: 50}]"
    people = [f"cccccccc-0000-0000-0000-{i:012d}" for i in range(40)]
    for aad in people:
        await install_user(harness, aad)
    await active_on(harness, people[0], 0)  # last seen: now, for one of them only; the rest never active
    harness.clock.advance(days=35)
    report = await campaigns(harness, quiet).run(harness.clock())
    expected_held = {p for p in people if in_sample(f"{TENANT}:{p}", 50, salt="back")}
    assert report.held_out == len(expected_held)
    assert report.queued == len(people) - len(expected_held)
    touches = await table(harness, CampaignTouch)
    assert {t.aad_object_id for t in touches if t.holdout} == expected_held
    aad_of = {u.id: u.aad_object_id for u in await table(harness, User)}
    messaged = {aad_of[r.user_id] for r in await table(harness, OutboxMessage)}
    assert messaged == set(people) - expected_held

    # everyone treated comes back within the window, nobody held out does
    treated = [p for p in people if p not in expected_held]
    harness.clock.advance(days=1)
    for aad in treated:
        await active_on(harness, aad, 0)
    harness.clock.advance(days=14)
    sessions = harness.app[SESSIONS]
    [row] = await campaign_report(lambda: UnitOfWork(sessions), harness.clock(), window_days=14, min_group=10)
    assert (row.result.treated.people, row.result.treated.returned) == (len(treated), len(treated))
    assert (row.result.holdout.people, row.result.holdout.returned) == (len(expected_held), 0)
    assert row.result.interval is not None and row.result.interval[0] > 0
    assert row.result.verdict == "more people came back than without it"


async def test_renewal_reminders_become_one_pending_csm_alert_each(harness: Harness) -> None:
    renewal = (harness.clock() + timedelta(days=58)).date().isoformat()
    response = await harness.client.put(f"/api/tenants/{TENANT}/renewal", json={"renewal_date": renewal}, headers=AUTH)
    assert response.status == 200
    runner = campaigns(harness, "campaigns: [{id: renewal, kind: renewal}]")
    assert (await runner.run(harness.clock())).renewal_alerts == 1
    assert (await runner.run(harness.clock())).renewal_alerts == 0  # no duplicate for the same cause
    harness.clock.advance(days=29)  # 29 days left: the 30-day reminder
    assert (await runner.run(harness.clock())).renewal_alerts == 1
    alerts = await table(harness, PendingAlert)
    # the reminder's reason, kept as a phrase for the CSM's language: in English, "renewal on … (in 58 d; the 60-day …)"
    assert [(a.kind, a.tenant_id, json.loads(a.detail or "")) for a in alerts] == [
        (
            "renewal",
            TENANT,
            {"key": "reason.renewal_reminder", "values": {"date": renewal, "days": 58, "threshold": 60}},
        ),
        (
            "renewal",
            TENANT,
            {"key": "reason.renewal_reminder", "values": {"date": renewal, "days": 29, "threshold": 30}},
        ),
    ]


async def test_the_bots_own_activity_counts_as_usage(harness: Harness) -> None:
    await install_user(harness, USER)
    harness.clock.advance(hours=2)
    assert (await harness.post(message("help", service_url=harness.connector.service_url))).status == 200
    [profile] = await table(harness, UsageProfile)
    assert (profile.aad_object_id, profile.events) == (USER, 2)
    assert profile.last_seen_at == harness.clock()


async def test_the_server_runs_campaigns_on_its_own_schedule(database_url: str, keys: Any, connector: Any) -> None:
    """NURTURE_CAMPAIGN_INTERVAL (here 0.6 s) makes the web app evaluate campaigns and queue messages by itself."""
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app
    from tests.conftest import APP_ID, Clock, make_settings
    from tests.support.credentials import FixedTokenCredentialsFactory

    settings = make_settings(database_url, keys.server.metadata_url, campaign_interval_minutes=0.01)
    app = create_app(
        settings,
        credentials_factory=FixedTokenCredentialsFactory(APP_ID),
        clock=Clock(),
        campaigns=parse_campaigns("campaigns: [{id: tips, kind: onboarding, days: [0]}]"),
    )
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        harness = Harness(client, connector, keys, settings, database_url, Clock())
        await install_user(harness, USER)
        for _ in range(100):
            if await table(harness, OutboxMessage):
                break
            await asyncio.sleep(0.05)
        [queued] = await table(harness, OutboxMessage)
        assert (queued.kind, queued.status) == ("onboarding", "queued")
    finally:
        await client.close()


async def test_deciding_who_gets_what_holds_no_writer_back(harness: Harness) -> None:
    """Deciding only reads (chats opened by creating them, the default): the dry run decides while another
    transaction holds SQLite's one writer lock, so answers and usage batches never wait for a campaign run over many
    people; on PostgreSQL its transaction is read-only."""
    await install_user(harness, USER)
    harness.clock.advance(days=20)
    await active_on(harness, USER, -5, -4, -2, -1)
    sessions = harness.app[SESSIONS]
    async with UnitOfWork(sessions) as writer:
        await writer.tenants.touch(TENANT, harness.clock())  # a write: the writer lock is held from here to commit
        plan = await asyncio.wait_for(campaigns(harness, ADOPTION_ONLY).plan(harness.clock()), 10)
        assert [(t.campaign_id, t.outcome.value) for t in plan.targets] == [("first-report", "send")]
        await writer.commit()
    async with UnitOfWork(sessions) as reader:
        await reader.reads_only()
        if harness.database_url.startswith("postgresql"):
            with pytest.raises(DBAPIError, match="read-only transaction"):
                await reader.tenants.touch(TENANT, harness.clock())
