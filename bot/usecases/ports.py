"""What use cases need from storage, as protocols: the unit of work and the repositories they reach through it.

storage.uow.UnitOfWork is the real one; tests/unit/fakes.py holds in-memory ones, so a use case can be unit-tested
without a database (the style of cosmicpython's AbstractUnitOfWork and FakeUnitOfWork). Use cases move to these
protocols one by one; a use case typed with one touches nothing the protocol does not name.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from storage.surveys import ScoredAnswer


class UnitOfWork(Protocol):
    """One transaction: `async with factory() as uow: ...; await uow.commit()`; rolled back if not committed."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def reads_only(self) -> None:
        """Declared first: this transaction only reads (it then holds no writer's lock)."""

    async def commit(self) -> None: ...


class AnswersRead(Protocol):
    async def scored_answers(self, tenant_id: str | None = None) -> list[ScoredAnswer]:
        """Every NPS answer (of one tenant), oldest first."""

    async def sent_instances(self, tenant_id: str | None = None) -> list[tuple[datetime, bool]]:
        """(sent at, answered?) for every ask that was delivered: the response rate's denominator."""


class ReportsUnitOfWork(UnitOfWork, Protocol):
    @property
    def surveys(self) -> AnswersRead: ...


class PrivacyStore(Protocol):
    async def forget(self, aad_object_id: str) -> dict[str, int]:
        """Delete every row about one person; rows deleted per table."""

    async def purge(
        self, comments_before: datetime, activities_before: datetime, usage_events_before: datetime
    ) -> dict[str, int]:
        """Blank comments and delete logs and raw events older than the cutoffs; what changed per kind."""


class PrivacyUnitOfWork(UnitOfWork, Protocol):
    @property
    def privacy(self) -> PrivacyStore: ...
