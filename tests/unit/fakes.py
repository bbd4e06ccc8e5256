"""In-memory stand-ins for the storage protocols of bot/usecases/ports.py: use cases unit-tested without a database.

Each fake keeps what it was given in plain lists and records what the use case asked of it, so a test can check both
the result and the conversation with storage (a read-only transaction declared, a commit made or not)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from storage.outbox import NewMessage
from storage.surveys import ScoredAnswer


@dataclass
class FakeAnswers:
    answers: list[ScoredAnswer] = field(default_factory=list)
    asks: list[tuple[str, datetime, bool]] = field(default_factory=list)  # (tenant, sent at, answered?)

    async def scored_answers(self, tenant_id: str | None = None) -> list[ScoredAnswer]:
        found = [a for a in self.answers if tenant_id is None or a.tenant_id == tenant_id]
        return sorted(found, key=lambda a: a.answered_at)

    async def sent_instances(self, tenant_id: str | None = None) -> list[tuple[datetime, bool]]:
        return [(at, answered) for tenant, at, answered in self.asks if tenant_id is None or tenant == tenant_id]


@dataclass
class FakePrivacy:
    forgotten: list[str] = field(default_factory=list)
    purges: list[tuple[datetime, datetime, datetime]] = field(default_factory=list)

    async def forget(self, aad_object_id: str) -> dict[str, int]:
        self.forgotten.append(aad_object_id)
        return {"users": 1}

    async def purge(
        self, comments_before: datetime, activities_before: datetime, usage_events_before: datetime
    ) -> dict[str, int]:
        self.purges.append((comments_before, activities_before, usage_events_before))
        return {"nps_comments_blanked": 0}


@dataclass(frozen=True)
class Card:
    id: int
    kind: str
    tenant_id: str
    user_id: int | None
    conversation_id: str
    activity_id: str | None
    queued: bool = False  # still waiting to be sent (no activity id yet)


@dataclass
class FakeOutbox:
    cards: list[Card] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    queued: list[NewMessage] = field(default_factory=list)

    async def cancel_queued(self, kind: str, reason: str, tenant_id: str | None = None) -> int:
        found = [
            c
            for c in self.cards
            if c.queued and c.id not in self.cancelled and c.kind == kind and tenant_id in (None, c.tenant_id)
        ]
        self.cancelled += [c.id for c in found]
        return len(found)

    async def sent_cards(self, kind: str, tenant_id: str | None = None) -> list[Card]:
        return [
            c
            for c in self.cards
            if not c.queued and c.activity_id and c.kind == kind and tenant_id in (None, c.tenant_id)
        ]

    async def enqueue(self, message: NewMessage, now: datetime) -> int | None:
        if any(m.dedupe_key == message.dedupe_key for m in self.queued):
            return None  # queued before: the dedupe key keeps it once, as the outbox table's unique key does
        self.queued.append(message)
        return len(self.queued)


@dataclass
class FakeUnitOfWork:
    surveys: FakeAnswers = field(default_factory=FakeAnswers)
    privacy: FakePrivacy = field(default_factory=FakePrivacy)
    outbox: FakeOutbox = field(default_factory=FakeOutbox)
    transactions: int = 0
    read_only: int = 0
    commits: int = 0

    async def __aenter__(self) -> Self:
        self.transactions += 1
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def reads_only(self) -> None:
        self.read_only += 1

    async def commit(self) -> None:
        self.commits += 1
