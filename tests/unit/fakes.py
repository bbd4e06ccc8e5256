"""In-memory stand-ins for the storage protocols of bot/usecases/ports.py: use cases unit-tested without a database.

Each fake keeps what it was given in plain lists and records what the use case asked of it, so a test can check both
the result and the conversation with storage (a read-only transaction declared, a commit made or not)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

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


@dataclass
class FakeUnitOfWork:
    surveys: FakeAnswers = field(default_factory=FakeAnswers)
    privacy: FakePrivacy = field(default_factory=FakePrivacy)
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
