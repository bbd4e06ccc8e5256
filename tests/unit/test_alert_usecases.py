"""Customer success use cases (bot.usecases.alerts) against the in-memory unit of work: raising, delivering,
escalating, the card actions, the CSM commands and the digest — their own logic, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.engagement.campaigns import AlertSettings
from bot.engagement.health import HealthPolicy
from bot.engagement.usage import UsageEvent
from bot.usecases.alerts.accounts import Accounts, AlertConfig
from bot.usecases.alerts.actions import AlertActions, AlertData
from bot.usecases.alerts.digests import Digests
from bot.usecases.alerts.run import AlertRun
from bot.usecases.alerts.views import CsmViews
from bot.usecases.card_actions import Actor, Refused
from tests.support.inspect import card_texts
from tests.unit.fakes import Answer, Cause, FakeUnitOfWork, Person

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday morning
CUSTOMER, VENDOR = "tenant-customer", "tenant-vendor"
FIRST, SECOND, STRANGER = "csm-first", "csm-second", "csm-stranger"
ASK = "ask-1"
PERSON = "person-1"


def world(at_risk_below: float = 0.0, **settings: Any) -> tuple[FakeUnitOfWork, AlertRun, AlertActions, CsmViews]:
    """A customer tenant with two assigned CSMs (in that order), each with a chat with the bot in the vendor's
    tenant, and a CSM who may see nothing; nobody installed the app at the customer yet. No account is at risk
    unless the test sets a threshold."""
    uow = FakeUnitOfWork()
    uow.tenants.seen = {CUSTOMER: NOW}
    uow.tenants.names = {CUSTOMER: "Northwind"}
    uow.alerts.assigned = {CUSTOMER: [FIRST, SECOND]}
    for row, csm in enumerate((FIRST, SECOND, STRANGER), start=1):
        uow.surveys.people[row] = Person(row, VENDOR, csm, installed_at=NOW - timedelta(days=30))
        uow.conversations.chats[row] = f"a:chat-{csm}"
    config = AlertConfig(HealthPolicy(at_risk_below=at_risk_below), AlertSettings(**settings), frozenset(), None)
    accounts = Accounts(lambda: uow, config)
    return uow, AlertRun(accounts, Digests(accounts)), AlertActions(accounts), CsmViews(accounts)


def detractor_answered(uow: FakeUnitOfWork, score: int = 3, comment: str | None = "Exports time out") -> None:
    """What storing a detractor's answer leaves: the answer and a pending alert."""
    at = NOW - timedelta(hours=1)
    uow.surveys.given[(ASK, PERSON)] = Answer(ASK, CUSTOMER, PERSON, score, comment, at)
    uow.surveys.causes.append(Cause(1, "detractor", CUSTOMER, at, ASK, PERSON, score))


def cards_to(uow: FakeUnitOfWork, csm: str, kind: str = "alert") -> list[dict[str, Any]]:
    return [m.card for m in uow.outbox.queued if m.kind == kind and m.conversation_id == f"a:chat-{csm}"]


async def test_a_detractor_answer_becomes_one_alert_for_the_first_csm_without_the_comment_in_the_outbox() -> None:
    uow, run, _, _ = world()
    detractor_answered(uow)
    report = await run.run(NOW)
    assert report.raised == {"detractor": 1} and report.cards == 1 and report.undeliverable == []
    [card] = cards_to(uow, FIRST)
    assert "Northwind" in card_texts(card) and "Exports time out" not in card_texts(card)
    assert cards_to(uow, SECOND) == [] and uow.surveys.causes[0].status == "raised"
    assert [(e.action, e.actor) for e in uow.alerts.entries] == [("raised", None), ("sent", None)]
    again = await run.run(NOW + timedelta(hours=1))
    assert again.raised == {} and again.cards == 0 and len(cards_to(uow, FIRST)) == 1


async def test_an_alert_for_an_account_without_a_csm_is_reported_undeliverable_and_sends_nothing() -> None:
    uow, run, _, _ = world()
    uow.alerts.assigned = {}
    detractor_answered(uow)
    report = await run.run(NOW)
    assert report.raised == {"detractor": 1} and report.cards == 0
    assert report.undeliverable == [f"alert 1: no CSM for tenant {CUSTOMER}"]
    assert [m for m in uow.outbox.queued if m.kind == "alert"] == []


async def test_an_alert_nobody_claims_escalates_to_the_next_csm_after_two_business_days() -> None:
    uow, run, _, _ = world()
    detractor_answered(uow)
    await run.run(NOW)
    early = await run.run(NOW + timedelta(days=1))
    assert early.escalated == 0 and cards_to(uow, SECOND) == []
    late = await run.run(NOW + timedelta(days=2, hours=1))  # Wednesday, past two business days
    assert late.escalated == 1 and late.cards == 1
    [card] = cards_to(uow, SECOND)
    assert uow.alerts.rows[0].escalation_level == 1 and "escalated" in [e.action for e in uow.alerts.entries]
    last = await run.run(NOW + timedelta(days=7))  # nobody after the second CSM: it stays with them
    assert last.escalated == 0 and uow.alerts.rows[0].escalate_at is None and len(cards_to(uow, SECOND)) == 1


async def test_the_first_claim_wins_and_a_later_one_changes_nothing() -> None:
    uow, run, actions, _ = world()
    detractor_answered(uow)
    await run.run(NOW)
    commits = uow.commits
    card = await actions.claim(AlertData(alert=1), Actor(VENDOR, FIRST.upper(), "en-US"), NOW)
    assert uow.alerts.rows[0].status == "claimed" and uow.alerts.rows[0].claimed_by == FIRST
    assert uow.alerts.locked == [1] and uow.commits == commits + 1
    assert "Exports time out" in card_texts(card)  # the live card shows the comment to the CSM
    await actions.claim(AlertData(alert=1), Actor(VENDOR, SECOND, "en-US"), NOW + timedelta(minutes=1))
    assert uow.alerts.rows[0].claimed_by == FIRST
    assert [e.actor for e in uow.alerts.entries if e.action == "claimed"] == [FIRST]


async def test_only_a_csm_of_the_account_may_act_on_an_alert_that_exists() -> None:
    uow, run, actions, _ = world()
    detractor_answered(uow)
    await run.run(NOW)
    with pytest.raises(Refused) as refused:
        await actions.resolve(AlertData(alert=1), Actor(VENDOR, STRANGER, "en-US"), NOW)
    assert refused.value.message_key == "error.not_your_account" and uow.alerts.rows[0].status == "open"
    with pytest.raises(Refused) as unknown:
        await actions.claim(AlertData(alert=2), Actor(VENDOR, FIRST, "en-US"), NOW)
    assert unknown.value.message_key == "error.unknown_alert"


async def test_a_note_must_say_something_and_fit_and_a_resolved_alert_takes_no_more_changes() -> None:
    uow, run, actions, _ = world()
    detractor_answered(uow)
    await run.run(NOW)
    actor = Actor(VENDOR, FIRST, "en-US")
    empty = await actions.note(AlertData(alert=1, note="   "), actor, NOW)
    long = await actions.note(AlertData(alert=1, note="x" * 501), actor, NOW)
    assert "Write a short note first." in card_texts(empty) and "note" not in [e.action for e in uow.alerts.entries]
    assert card_texts(long) != card_texts(empty)
    await actions.note(AlertData(alert=1, note=" Called them "), actor, NOW)
    await actions.resolve(AlertData(alert=1), actor, NOW + timedelta(minutes=5))
    alert = uow.alerts.rows[0]
    assert (alert.status, alert.resolved_by, alert.open_key, alert.escalate_at) == ("resolved", FIRST, None, None)
    await actions.snooze(AlertData(alert=1), Actor(VENDOR, SECOND, "en-US"), NOW + timedelta(minutes=6))
    assert alert.status == "resolved" and alert.snoozed_until is None
    assert [(e.action, e.note) for e in uow.alerts.entries if e.actor] == [("note", "Called them"), ("resolved", None)]


async def test_a_snoozed_alert_wakes_after_a_week_and_reaches_its_csm_again() -> None:
    uow, run, actions, _ = world()
    detractor_answered(uow)
    await run.run(NOW)
    await actions.snooze(AlertData(alert=1), Actor(VENDOR, FIRST, "en-US"), NOW)
    assert uow.alerts.rows[0].snoozed_until == NOW + timedelta(days=7)
    await run.run(NOW + timedelta(days=6))
    assert uow.alerts.rows[0].status == "snoozed" and len(cards_to(uow, FIRST)) == 1
    await run.run(NOW + timedelta(days=7, hours=1))
    assert uow.alerts.rows[0].status == "open" and len(cards_to(uow, FIRST)) == 2
    assert [e.action for e in uow.alerts.entries].count("reopened") == 1


def used(uow: FakeUnitOfWork, person: str, days_ago: int) -> None:
    at = NOW - timedelta(days=days_ago)
    event = UsageEvent(CUSTOMER, person, "report_opened", at, at.date())
    uow.usage.events[event.identity] = event


async def test_an_account_that_falls_below_the_threshold_raises_one_at_risk_alert_until_it_recovers() -> None:
    uow, run, _, views = world(at_risk_below=50.0)
    for row in range(10, 20):  # ten people installed, two of them active a while ago only
        uow.surveys.people[row] = Person(row, CUSTOMER, f"p{row}", installed_at=NOW - timedelta(days=200))
    used(uow, "p10", 50)
    used(uow, "p11", 45)
    first = await run.run(NOW)
    assert first.raised == {"at_risk": 1} and uow.tenants.health[CUSTOMER][1] is True
    assert (await run.run(NOW + timedelta(days=1))).raised == {}  # still at risk: no second alert
    at_risk = card_texts(await views.at_risk_card(FIRST, "en-US", NOW))
    assert "Northwind" in at_risk
    assert "Northwind" not in card_texts(await views.at_risk_card(STRANGER, "en-US", NOW))
    account = await views.account_card(FIRST, "northwind", "en-US", NOW)
    assert account is not None and "Northwind" in card_texts(account)
    assert await views.account_card(STRANGER, "northwind", "en-US", NOW) is None


async def test_each_csm_gets_one_digest_a_day_in_their_morning_naming_only_their_accounts() -> None:
    uow, run, _, _ = world(digest_hour=10)
    detractor_answered(uow)
    before = await run.run(NOW)  # 09:00 UTC: before the digest hour
    assert before.digests == 0
    after = await run.run(NOW + timedelta(hours=1))
    assert after.digests == 2  # FIRST and SECOND; STRANGER is no CSM
    [digest] = cards_to(uow, FIRST, "digest")
    assert "Northwind" in card_texts(digest)
    assert (await run.run(NOW + timedelta(hours=2))).digests == 0
