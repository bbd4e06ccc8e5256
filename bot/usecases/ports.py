"""What use cases need from storage, as protocols: the unit of work and the repositories they reach through it.

storage.uow.UnitOfWork is the real one; tests/unit/fakes.py holds in-memory ones, so a use case can be unit-tested
without a database (the style of cosmicpython's AbstractUnitOfWork and FakeUnitOfWork). Use cases move to these
protocols one by one; a use case typed with one touches nothing the protocol does not name.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from storage.outbox import NewMessage
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


class SentCard(Protocol):
    """A card Teams accepted: what a recall takes back."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def user_id(self) -> int | None: ...
    @property
    def conversation_id(self) -> str: ...
    @property
    def activity_id(self) -> str | None: ...


class RecallOutbox(Protocol):
    async def cancel_queued(self, kind: str, reason: str, tenant_id: str | None = None) -> int:
        """Cancel the queued, unsent messages of one kind; how many."""

    async def sent_cards(self, kind: str, tenant_id: str | None = None) -> Sequence[SentCard]:
        """Cards of one kind that Teams accepted (they have an activity id)."""

    async def enqueue(self, message: NewMessage, now: datetime) -> int | None:
        """The new row's id; None when a message with the same dedupe key was queued before."""


class RecallUnitOfWork(UnitOfWork, Protocol):
    @property
    def outbox(self) -> RecallOutbox: ...
