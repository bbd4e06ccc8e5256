"""Churn-risk alerts end to end on both databases: raised from detractors, health and renewals, delivered to CSMs,
acted on from the card (updates for every CSM, naming who acted), deduplicated, escalated on time; CSM commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.app import ALERTS, SESSIONS
from bot.campaigns_file import load_campaigns, parse_campaigns
from bot.policies import alert_config
from bot.usecases.alerts.accounts import Accounts
from bot.usecases.alerts.digests import Digests
from bot.usecases.alerts.run import AlertRun
from bot.usecases.alerts.views import CsmViews
from storage.models import Alert, AlertLog, OutboxMessage
from storage.people import ConversationTarget
from storage.uow import UnitOfWork
from tests.conftest import Harness
from tests.e2e.test_campaigns import install_user
from tests.e2e.test_nps_flow import ask, invoke, post_invoke, submit, table
from tests.e2e.test_usage_ingest import post_events
from tests.support.activities import CSM, TENANT, USER, message
from tests.support.connector import card_of
from tests.support.inspect import card_texts
from tests.support.usage import event

CSM2 = "dddddddd-0000-0000-0000-00000000c5a2"
OTHER_TENANT_ID = "22222222-2222-2222-2222-222222222222"
CHANNEL = "19:escalations@thread.tacv2"


def alerts(harness: Harness, yaml: str | None = None) -> AlertRun:
    """The app's alert run, or one with another campaigns file (escalation settings)."""
    if yaml is None:
        return harness.app[ALERTS]
    sessions = harness.app[SESSIONS]
    accounts = Accounts(lambda: UnitOfWork(sessions), alert_config(harness.settings, parse_campaigns(yaml)))
    return AlertRun(accounts, Digests(accounts))


def views(harness: Harness) -> CsmViews:
    """The cards of the CSM commands, as the app builds them."""
    return CsmViews(harness.app[ALERTS].accounts)


async def uow(harness: Harness) -> UnitOfWork:
    return UnitOfWork(harness.app[SESSIONS])


async def assign(harness: Harness, tenant: str, csm: str, position: int) -> None:
    async with await uow(harness) as work:
        await work.tenants.touch(tenant, harness.clock())
        await work.alerts.assign(tenant, csm, position)
        await work.commit()


def cards_to(harness: Harness, aad: str) -> list[dict[str, Any]]:
    """Cards the bot sent into the person's personal chat (proactive and replies)."""
    return [
        card_of(activity)
        for call, activity in ((c, c.body) for c in harness.connector.calls)
        if activity and call.method == "POST" and f"a:personal-{aad}" in call.path and activity.get("attachments")
    ]


async def detractor(harness: Harness, comment: str = "Exports keep timing out") -> str:
    instance = await ask(harness)
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "2", comment)))
    return instance


async def test_a_detractor_alert_reaches_the_csm_who_claims_notes_and_resolves_it(harness: Harness) -> None:
    await install_user(harness, CSM)
    await detractor(harness)
    report = await alerts(harness).run(harness.clock())
    assert report.raised == {"detractor": 1}
    await harness.deliver()
    [card] = [c for c in cards_to(harness, CSM) if "Detractor" in card_texts(c)]
    texts = card_texts(card)
    assert f"Detractor at {TENANT}: 2/10" in texts
    assert "Exports keep timing out" not in texts  # the stored copy; the refreshed card shows it
    assert "They left a comment" in texts
    assert "Open — nobody has claimed it yet." in texts
    assert card["refresh"]["userIds"] == [f"8:orgid:{CSM}"]
    [alert] = await table(harness, Alert)

    refreshed = await post_invoke(harness, invoke(harness, "alert.refresh", {"alert": alert.id}, aad=CSM))
    assert "Exports keep timing out" in card_texts(refreshed)
    claimed = await post_invoke(harness, invoke(harness, "alert.claim", {"alert": alert.id}, aad=CSM))
    assert "Claimed by you." in card_texts(claimed)
    assert "Claim" not in [a["title"] for a in claimed["body"][-1]["actions"]]

    # another CSM, assigned to the tenant, sees the new state and who did it when their card refreshes
    await assign(harness, TENANT, CSM2, 0)
    seen = await post_invoke(harness, invoke(harness, "alert.refresh", {"alert": alert.id}, aad=CSM2))
    assert "Claimed by a colleague (…c5a1)." in card_texts(seen)
    assert f"8:orgid:{CSM2}" in seen["refresh"]["userIds"] and f"8:orgid:{CSM}" in seen["refresh"]["userIds"]

    empty = await post_invoke(harness, invoke(harness, "alert.note", {"alert": alert.id, "note": "  "}, aad=CSM))
    assert "Write a short note first." in card_texts(empty)
    too_long = await post_invoke(
        harness, invoke(harness, "alert.note", {"alert": alert.id, "note": "x" * 501}, aad=CSM)
    )
    assert "The note is too long" in card_texts(too_long)
    assert [e.action for e in await table(harness, AlertLog)].count("note") == 0  # nothing stored

    noted = await post_invoke(
        harness, invoke(harness, "alert.note", {"alert": alert.id, "note": "Called their admin, fix shipped"}, aad=CSM2)
    )
    assert "outreach logged by you: Called their admin, fix shipped" in card_texts(noted)
    resolved = await post_invoke(harness, invoke(harness, "alert.resolve", {"alert": alert.id}, aad=CSM))
    assert "Resolved by you." in card_texts(resolved)
    assert not any(isinstance(b, dict) and b.get("type") == "ActionSet" for b in resolved["body"])
    late = await post_invoke(harness, invoke(harness, "alert.claim", {"alert": alert.id}, aad=CSM2))
    assert "Resolved by a colleague (…c5a1)." in card_texts(late)  # a late click changes nothing

    [stored] = await table(harness, Alert)
    assert (stored.status, stored.claimed_by, stored.resolved_by, stored.open_key) == ("resolved", CSM, CSM, None)
    log = [(e.action, e.actor, e.note) for e in await table(harness, AlertLog)]
    assert log == [
        ("raised", None, None),
        ("sent", None, None),
        ("claimed", CSM, None),
        ("note", CSM2, "Called their admin, fix shipped"),
        ("resolved", CSM, None),
    ]


async def test_people_who_may_not_see_the_account_are_refused(harness: Harness) -> None:
    await install_user(harness, CSM)
    await detractor(harness)
    await alerts(harness).run(harness.clock())
    [alert] = await table(harness, Alert)
    await assign(harness, OTHER_TENANT_ID, CSM2, 0)  # a CSM, but of another tenant
    for aad in (USER, CSM2):
        card = await post_invoke(harness, invoke(harness, "alert.claim", {"alert": alert.id}, aad=aad))
        assert "You are not a CSM for this account." in card_texts(card)
    for data, text in (
        ({"alert": "x"}, "couldn't read"),
        ({"alert": 999999}, "no longer exists"),
        ({"alert": 2**63}, "couldn't read"),  # no row has such an id (SQLite's driver could not even send it)
        ({"alert": -1}, "couldn't read"),
    ):
        card = await post_invoke(harness, invoke(harness, "alert.claim", data, aad=CSM))
        assert text in card_texts(card)
    assert (await table(harness, Alert))[0].status == "open"


async def _collapse(harness: Harness, people: int = 6) -> None:
    """People active every day for two weeks, then not at all for 32 days (the harness clock moves on)."""
    users = [f"eeeeeeee-0000-0000-0000-{i:012d}" for i in range(people)]
    for aad in users:
        await install_user(harness, aad)
    events = [event("report_created", harness.clock() - timedelta(days=d), user=u) for u in users for d in range(14)]
    assert (await post_events(harness, events)).status == 202
    harness.clock.advance(days=32)


async def test_at_risk_is_raised_once_per_crossing(harness: Harness) -> None:
    await install_user(harness, CSM)
    await _collapse(harness)
    engine = alerts(harness)
    first = await engine.run(harness.clock())
    assert first.raised == {"at_risk": 1}
    [alert] = await table(harness, Alert)
    assert alert.kind == "at_risk" and alert.score is not None and alert.score < 50
    reasons = json.loads(alert.reasons)
    assert reasons[0] == {"key": "reason.usage_none", "values": {}}  # worded in each CSM's language when shown
    assert (await engine.run(harness.clock())).raised == {}  # still at risk, alert open: no duplicate
    await post_invoke(harness, invoke(harness, "alert.resolve", {"alert": alert.id}, aad=CSM))
    assert (await engine.run(harness.clock())).raised == {}  # resolved, but no new crossing
    # usage comes back (health recovers), then collapses again: a new crossing, a new alert
    back = [event("report_created", harness.clock() - timedelta(hours=h), user=CSM) for h in range(1, 3)]
    back += [
        event("report_created", harness.clock() - timedelta(days=d), user=f"eeeeeeee-0000-0000-0000-{i:012d}")
        for i in range(6)
        for d in range(1, 10)
    ]
    assert (await post_events(harness, back)).status == 202
    assert (await engine.run(harness.clock())).raised == {}
    harness.clock.advance(days=40)
    assert (await engine.run(harness.clock())).raised == {"at_risk": 1}
    assert [a.status for a in await table(harness, Alert)] == ["resolved", "open"]


async def test_unclaimed_alerts_escalate_after_two_business_days(harness: Harness) -> None:
    config = f"campaigns: []\nalerts: {{escalate_after_business_days: 2, escalation_conversation: '{CHANNEL}'}}"
    engine = alerts(harness, config)
    harness.clock.now = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # a Friday
    for aad in (CSM, CSM2):
        await install_user(harness, aad)
    await assign(harness, TENANT, CSM, 0)
    await assign(harness, TENANT, CSM2, 1)
    async with await uow(harness) as work:  # the bot is installed in the escalation channel
        await work.conversations.upsert(
            ConversationTarget(CHANNEL, TENANT, "team", "msteams", harness.connector.service_url, "28:nurture-bot"),
            harness.clock(),
        )
        await work.commit()
    await detractor(harness)
    await engine.run(harness.clock())
    recipients = lambda rows: sorted(r.conversation_id for r in rows if r.kind == "alert")  # noqa: E731
    assert recipients(await table(harness, OutboxMessage)) == [f"a:personal-{CSM}"]

    harness.clock.now = datetime(2026, 12, 1, 14, 59, tzinfo=UTC)  # Tuesday, a minute before 2 business days
    assert (await engine.run(harness.clock())).escalated == 0
    harness.clock.now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert (await engine.run(harness.clock())).escalated == 1
    assert recipients(await table(harness, OutboxMessage)) == [f"a:personal-{CSM}", f"a:personal-{CSM2}"]
    [alert] = await table(harness, Alert)
    assert alert.escalation_level == 1
    await harness.deliver()
    [escalated] = [c for c in cards_to(harness, CSM2) if "Detractor" in card_texts(c)]
    assert "Escalated: nobody claimed this alert in time." in card_texts(escalated)

    harness.clock.now = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert (await engine.run(harness.clock())).escalated == 1
    assert CHANNEL in recipients(await table(harness, OutboxMessage))
    harness.clock.now = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
    assert (await engine.run(harness.clock())).escalated == 0  # nobody further up

    # a claimed alert never escalates
    await post_invoke(harness, invoke(harness, "alert.resolve", {"alert": alert.id}, aad=CSM2))
    await detractor(harness, "Second complaint")
    await engine.run(harness.clock())
    second = (await table(harness, Alert))[-1]
    await post_invoke(harness, invoke(harness, "alert.claim", {"alert": second.id}, aad=CSM))
    harness.clock.advance(days=10)
    assert (await engine.run(harness.clock())).escalated == 0


async def test_csm_commands_and_what_each_csm_may_see(harness: Harness) -> None:
    await install_user(harness, CSM)
    await _collapse(harness)
    async with await uow(harness) as work:
        await work.alerts.set_name(TENANT, "Contoso Pharma", harness.clock())
        await work.tenants.set_renewal(TENANT, (harness.clock() + timedelta(days=40)).date(), harness.clock())
        await work.commit()

    async def say(text: str, aad: str) -> str:
        before = len(harness.connector.sent())
        response = await harness.post(message(text, service_url=harness.connector.service_url, aad_object_id=aad))
        assert response.status == 200
        return card_texts(card_of(harness.connector.sent()[before]))

    at_risk = await say("at risk", CSM)
    assert (
        "Accounts at risk" in at_risk and "Contoso Pharma" in at_risk and "no activity in the last 28 days" in at_risk
    )
    renewals = await say("renewals", CSM)
    assert "Contoso Pharma" in renewals and "(40 d)" in renewals
    account = await say("account contoso pharma", CSM)
    assert "Health" in account and "Usage trend" in account and "at risk" in account
    assert "NPS: too few answers in 90 days (0)." in account
    assert "Seat activation" in account

    assert "For customer success managers" in await say("help", CSM)
    assert "For customer success managers" not in await say("help", USER)
    # a non-CSM is refused politely; a CSM of another tenant sees nothing of this one
    assert "for customer success managers" in await say("at risk", USER)
    await install_user(harness, CSM2)
    await assign(harness, OTHER_TENANT_ID, CSM2, 0)
    theirs = await say("at risk", CSM2)
    assert OTHER_TENANT_ID in theirs and "Contoso Pharma" not in theirs
    assert "I don't know that account" in await say(f"account {TENANT}", CSM2)
    assert f"NPS — account {OTHER_TENANT_ID}" in await say("nps", CSM2)  # their only tenant
    assert "I don't know that account" in await say(f"nps {TENANT}", CSM2)


async def test_the_account_card_has_a_chart_with_fallback(harness: Harness) -> None:
    await install_user(harness, CSM)
    users = [f"eeeeeeee-0000-0000-0000-{i:012d}" for i in range(3)]
    events = [event("report_created", harness.clock() - timedelta(days=d), user=u) for u in users for d in range(5)]
    assert (await post_events(harness, events)).status == 202
    card = await views(harness).account_card(CSM, TENANT, "en-US", harness.clock())
    assert card is not None
    chart = next(b for b in card["body"] if b["type"] == "Chart.Line")
    assert chart["fallback"]["type"] == "TextBlock"
    assert len(chart["data"][0]["values"]) == 5
    assert await views(harness).account_card(CSM2, TENANT, "en-US", harness.clock()) is None


async def test_digest_arrives_in_the_csms_morning_once(harness: Harness) -> None:
    await install_user(harness, CSM)  # Europe/Berlin (the test activities' time zone)
    await detractor(harness)
    engine = alerts(harness)
    harness.clock.now = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)  # 07:30 in Berlin
    assert (await engine.run(harness.clock())).digests == 0
    harness.clock.now = datetime(2026, 11, 25, 7, 5, tzinfo=UTC)  # 08:05 in Berlin
    assert (await engine.run(harness.clock())).digests == 1
    assert (await engine.run(harness.clock())).digests == 0  # one per day
    await harness.deliver()
    digest = next(c for c in cards_to(harness, CSM) if "Your customer digest" in card_texts(c))
    texts = card_texts(digest)
    assert "Your customer digest for 2026-11-25" in texts
    assert "New alerts (1)" in texts and "detractor: NPS answer 2/10" in texts


async def test_renewal_reminders_from_campaigns_become_alerts(harness: Harness) -> None:
    from bot.usecases.campaigns import Campaigns

    await install_user(harness, CSM)
    async with await uow(harness) as work:
        await work.tenants.set_renewal(TENANT, (harness.clock() + timedelta(days=30)).date(), harness.clock())
        await work.commit()
    sessions = harness.app[SESSIONS]
    campaigns = Campaigns(lambda: UnitOfWork(sessions), _campaign_config(harness))
    await campaigns.run(harness.clock())
    report = await alerts(harness).run(harness.clock())
    assert report.raised == {"renewal": 1}
    [alert] = await table(harness, Alert)
    [reason] = json.loads(alert.reasons)
    due = (harness.clock() + timedelta(days=30)).date().isoformat()
    assert reason == {"key": "reason.renewal_reminder", "values": {"date": due, "days": 30, "threshold": 30}}


def _campaign_config(harness: Harness) -> Any:
    from bot.policies import campaign_config

    return campaign_config(harness.settings, load_campaigns())


async def test_a_german_csm_reads_every_reason_in_german(harness: Harness) -> None:
    """Reasons are stored as phrases and worded for the reader: the alert card, the digest and the at-risk list of a
    CSM whose Teams speaks German say why in German (the numbers and dates as worked out when the alert was raised)."""
    await install_user(harness, CSM, locale="de-DE")  # Europe/Berlin
    await detractor(harness)
    await _collapse(harness)
    harness.clock.now = harness.clock.now.replace(hour=7, minute=5)  # 08:05 in Berlin: digest time
    while harness.clock.now.weekday() >= 5:  # digests go out on weekdays
        harness.clock.advance(days=1)
    report = await alerts(harness).run(harness.clock())
    assert report.raised == {"at_risk": 1, "detractor": 1} and report.digests == 1
    await harness.deliver()
    texts = [card_texts(c) for c in cards_to(harness, CSM)]
    at_risk = next(t for t in texts if "Gefährdet" in t)
    assert "• keine Aktivität in den letzten 28 Tagen" in at_risk
    detractor_card = next(t for t in texts if "Kritiker bei" in t)
    assert "• NPS-Antwort 2/10 am 2026-11-24" in detractor_card
    digest = next(t for t in texts if "2026-12" in t and "Kritiker: NPS-Antwort 2/10 am 2026-11-24" in t)
    assert "gefährdet: keine Aktivität in den letzten 28 Tagen" in digest
    assert not any(english in t for t in texts for english in ("no activity", "NPS answer", "detractor answers"))

    before = len(harness.connector.sent())
    asked = message("at risk", service_url=harness.connector.service_url, aad_object_id=CSM, locale="de-DE")
    assert (await harness.post(asked)).status == 200
    listed = card_texts(card_of(harness.connector.sent()[before]))
    assert "keine Aktivität in den letzten 28 Tagen" in listed and "Personen mit der App in 30 Tagen aktiv" in listed
