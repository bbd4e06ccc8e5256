"""The delivery worker (bot.usecases.delivery) against the in-memory unit of work and a scripted Teams: what it sends,
what it writes for each answer, and how it opens a chat — its own logic, on a clock the test moves. The claims,
leases and holds as SQL keeps them, with real processes and crashes, are tests/e2e/test_delivery*.py's."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.engagement.delivery import AttemptResult
from bot.engagement.reach import pending_chat
from bot.usecases.delivery.ports import OpenOutcome, SendOutcome
from bot.usecases.delivery.worker import DeliveryConfig, DeliveryWorker
from bot.usecases.ports import Conversation
from storage.outbox import NewMessage
from storage.people import ConversationTarget
from tests.unit.fakes import Ask, FakeUnitOfWork, Person

START = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
TENANT = "tenant-one"
SERVICE = "https://smba.trafficmanager.net/emea/"


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=max(seconds, 0.0))


@dataclass
class Teams:
    """Answers each request with the next scripted status for its conversation (then 201), and records it."""

    script: dict[str, list[AttemptResult]] = field(default_factory=dict)
    sent: list[tuple[str, str]] = field(default_factory=list)  # (conversation, card's fallback text)
    opened: list[str] = field(default_factory=list)  # AAD object ids a chat was opened for
    open_answer: OpenOutcome | None = None

    async def attempt(self, target: Conversation, card: dict[str, Any], summary: str) -> SendOutcome:
        scripted = self.script.get(target.conversation_id, [])
        result = scripted.pop(0) if scripted else AttemptResult(201)
        self.sent.append((target.conversation_id, card.get("fallbackText", "")))
        ok = result.status_code is not None and result.status_code < 300
        return SendOutcome(result, f"activity-{len(self.sent)}" if ok else None)

    async def attempt_update(
        self, target: Conversation, activity_id: str, card: dict[str, Any], summary: str
    ) -> SendOutcome:
        return await self.attempt(target, card, summary)

    async def attempt_delete(self, target: Conversation, activity_id: str) -> SendOutcome:
        return SendOutcome(AttemptResult(200))

    async def attempt_open(self, anchor: Conversation, aad_object_id: str) -> OpenOutcome:
        self.opened.append(aad_object_id)
        return self.open_answer or OpenOutcome(AttemptResult(201), f"a:opened-{aad_object_id}")


def world(people: int = 2) -> tuple[FakeUnitOfWork, Teams, Clock, Callable[[], DeliveryWorker]]:
    """A tenant where the bot has a personal chat with each of `people` people."""
    uow, teams, clock = FakeUnitOfWork(), Teams(), Clock()
    for row in range(1, people + 1):
        uow.surveys.people[row] = Person(row, TENANT, f"aad-{row}", installed_at=START - timedelta(days=9))
        target = ConversationTarget(f"a:chat-{row}", TENANT, "personal", "msteams", SERVICE, "28:bot", user_id=row)
        uow.conversations.live[target.conversation_id] = target
        uow.conversations.chats[row] = target.conversation_id

    def worker() -> DeliveryWorker:
        config = DeliveryConfig(lease=timedelta(seconds=60))
        return DeliveryWorker(lambda: uow, teams, "worker-1", clock, config, sleep=clock.sleep, opener=teams)

    return uow, teams, clock, worker


async def queue(uow: FakeUnitOfWork, key: str, user: int, conversation: str | None = None, **options: Any) -> None:
    card = {"type": "AdaptiveCard", "version": "1.5", "fallbackText": key, "body": []}
    message = NewMessage.of_card(key, "nurture", TENANT, user, conversation or f"a:chat-{user}", card, **options)
    await uow.outbox.enqueue(message, START)


async def test_each_queued_card_is_sent_once_and_its_ask_learns_its_activity_id() -> None:
    uow, teams, _, worker = world()
    uow.surveys.instances["ask-1"] = Ask("ask-1", TENANT, 1, "queued", START, START + timedelta(days=14))
    await queue(uow, "tip-1", 1)
    await queue(uow, "ask-1", 1, survey_instance_id="ask-1")
    await queue(uow, "tip-2", 2)
    await worker().drain()
    assert sorted(teams.sent) == [("a:chat-1", "ask-1"), ("a:chat-1", "tip-1"), ("a:chat-2", "tip-2")]
    assert [(r.status, r.attempts, r.leased_by) for r in uow.outbox.rows] == [("sent", 1, None)] * 3
    ask = uow.surveys.instances["ask-1"]
    assert ask.status == "sent" and ask.activity_id == uow.outbox.rows[1].activity_id is not None
    assert uow.outbox.holds[TENANT].worker is None  # the tenant is let go once nothing is due
    await worker().drain()
    assert len(teams.sent) == 3


async def test_a_429_pauses_the_tenant_and_the_card_goes_after_the_pause() -> None:
    uow, teams, clock, worker = world()
    teams.script["a:chat-1"] = [AttemptResult(429, retry_after="30")]
    await queue(uow, "tip-1", 1)
    await worker().drain()
    row = uow.outbox.rows[0]
    assert (row.status, row.last_status_code) == ("queued", 429) and uow.outbox.throttled == 1
    assert uow.outbox.paused[TENANT] >= START.timestamp() + 30
    clock.now = row.next_attempt_at or clock.now
    await worker().drain()
    assert [c for c, _ in teams.sent] == ["a:chat-1", "a:chat-1"] and row.status == "sent" and row.attempts == 2


async def test_a_person_teams_refuses_is_marked_unreachable_and_the_card_is_not_retried() -> None:
    uow, teams, clock, worker = world()
    teams.script["a:chat-2"] = [AttemptResult(403, "ConversationBlockedByUser")]
    await queue(uow, "tip-2", 2)
    await worker().drain()
    row = uow.outbox.rows[0]
    assert (row.status, row.last_status_code) == ("failed", 403) and 2 in uow.outbox.unreachable
    clock.now += timedelta(hours=1)
    await worker().drain()
    assert len(teams.sent) == 1


async def test_a_request_without_an_answer_ends_unknown_and_is_never_sent_again() -> None:
    uow, teams, clock, worker = world()
    teams.script["a:chat-1"] = [AttemptResult(None, "timeout")]
    await queue(uow, "tip-1", 1)
    await worker().drain()
    assert uow.outbox.rows[0].status == "unknown"
    clock.now += timedelta(hours=1)
    await worker().drain()
    assert len(teams.sent) == 1


async def test_a_card_for_someone_without_a_chat_opens_one_and_goes_there() -> None:
    uow, teams, _, worker = world(people=2)
    uow.surveys.people[3] = Person(3, TENANT, "aad-3")  # met in a team, never installed personally
    await queue(uow, "tip-3", 3, pending_chat(3))
    await queue(uow, "tip-3b", 3, pending_chat(3))
    await worker().drain()
    assert teams.opened == ["aad-3"]  # once, for both cards
    assert sorted(teams.sent) == [("a:opened-aad-3", "tip-3"), ("a:opened-aad-3", "tip-3b")]
    assert uow.conversations.chats[3] == "a:opened-aad-3" and uow.surveys.people[3].installed_at is not None
    assert [r.conversation_id for r in uow.outbox.rows] == ["a:opened-aad-3"] * 2


async def test_a_card_that_cannot_reach_anyone_is_cancelled_with_the_reason() -> None:
    uow, teams, _, worker = world(people=0)
    uow.surveys.people[3] = Person(3, TENANT, "aad-3")
    await queue(uow, "tip-3", 3, pending_chat(3))
    await worker().drain()
    row = uow.outbox.rows[0]
    assert row.status == "cancelled" and row.last_error is not None and "no personal chat" in row.last_error
    assert teams.opened == [] and teams.sent == []


async def test_an_outcome_for_a_claim_that_is_no_longer_the_workers_is_not_written() -> None:
    uow, teams, clock, worker = world()
    await queue(uow, "tip-1", 1)
    delivering = worker()
    [row] = await uow.outbox.claim("worker-1", clock(), timedelta(seconds=60), 10)
    uow.outbox.rows[0].attempts += 1  # another worker claimed it again after this lease ran out
    await delivering.deliver(row)
    assert uow.outbox.rows[0].status == "sending" and uow.outbox.rows[0].sent_at is None
    assert json.loads(uow.outbox.rows[0].payload)["card"]["fallbackText"] == "tip-1"
