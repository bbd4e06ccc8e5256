"""Writing down what happened to each send, many at a time.

Before a request leaves, its row is marked as leaving (a crash from then on leaves it `unknown`, never sent twice);
after Teams answers, the outcome and what follows from it (a survey's delivery, a 429's pause, an unreachable person)
are written. Writes that arrive while one is under way go together in the next transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from bot.engagement.delivery import Status, Verdict
from bot.usecases.delivery.pacing import TenantPacer
from bot.usecases.delivery.ports import SendOutcome
from bot.usecases.ports import DeliveryUnitOfWork, Queued

log = logging.getLogger(__name__)
Item = TypeVar("Item")

FINAL_FOR_SURVEYS = (Status.SENT, Status.FAILED, Status.UNKNOWN)  # a survey's delivery is settled


@dataclass(frozen=True)
class _Outcome:
    """An attempt's outcome waiting to be written (OutcomeWriter.record)."""

    row: Queued
    verdict: Verdict
    code: int | None
    outcome: SendOutcome
    now: datetime
    bucket: str | None


@dataclass(frozen=True)
class _Start:
    """A row whose request is about to leave, waiting for that to be written (OutcomeWriter.mark_leaving)."""

    row: Queued
    now: datetime


class GroupCommit(Generic[Item]):
    """Writes that arrive while one is under way wait and go together in the next transaction: one transaction for
    many sends instead of one each (the per-send database round trips were most of a send's CPU).

    `write_many` writes a batch in one transaction and returns a result for each item; if it raises, every item of
    the batch gets the exception (its caller decides whether to try again)."""

    def __init__(self, write_many: Callable[[Sequence[Item]], Awaitable[list[bool]]]) -> None:
        self._write_many = write_many
        self._waiting: list[tuple[Item, asyncio.Future[bool]]] = []
        self._writer: asyncio.Future[None] | None = None

    async def write(self, item: Item) -> bool:
        """The item's result, once its transaction is committed."""
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_all())
        return await written

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await self._write_many([item for item, _ in batch])
            except Exception as exc:
                for _, written in batch:
                    if not written.done():
                        written.set_exception(exc)
            else:
                for (_, written), result in zip(batch, results, strict=True):
                    if not written.done():
                        written.set_result(result)


@dataclass
class OutcomeWriter:
    uow_factory: Callable[[], DeliveryUnitOfWork]
    worker_id: str
    clock: Callable[[], datetime]
    lease: timedelta
    pacer: TenantPacer  # told of every 429's pause as soon as it is written
    # the marks of requests about to leave have a queue of their own, so they never wait behind a batch of outcomes
    _outcomes: GroupCommit[_Outcome] = field(init=False)
    _starts: GroupCommit[_Start] = field(init=False)

    def __post_init__(self) -> None:
        self._outcomes = GroupCommit(self._write_outcomes)
        self._starts = GroupCommit(self._write_starts)

    async def mark_leaving(self, row: Queued) -> bool:
        """Write down that the row's request is about to leave; False when the row is no longer this claim's."""
        return await self._starts.write(_Start(row, self.clock()))

    async def unmark(self, row: Queued) -> bool:
        """Take back the mark of a row that did not leave after all; False when it is no longer this claim's."""
        async with self.uow_factory() as uow:
            kept = await uow.outbox.unmark(self.worker_id, row.id, row.attempts)
            await uow.commit()
        return kept

    async def record(
        self,
        row: Queued,
        verdict: Verdict,
        code: int | None,
        outcome: SendOutcome,
        now: datetime,
        bucket: str | None = None,
    ) -> None:
        """Write down an attempt's outcome and what follows from it; returns once it is committed.

        Outcomes that arrive while a write is under way go together in the next one: one transaction for many sends
        instead of one each (and the per-send database round trips were most of a send's CPU).
        """
        await self._outcomes.write(_Outcome(row, verdict, code, outcome, now, bucket))

    async def _write_outcomes(self, items: Sequence[_Outcome]) -> list[bool]:
        """One transaction for the outcomes that came in together, with the tenants' pauses after 429s."""
        async with self.uow_factory() as uow:
            pauses: dict[str, list[float]] = {}  # bucket → the end of each 429's pause
            for item in items:
                await self._apply(uow, item, pauses)
            for paused in sorted(pauses):  # in one order: two writers pausing two tenants cannot deadlock
                await uow.outbox.pause_tenant(paused, max(pauses[paused]), throttled=len(pauses[paused]))
            await uow.commit()
        return [True] * len(items)

    async def _write_starts(self, items: Sequence[_Start]) -> list[bool]:
        """One statement for the rows about to leave that came in together: whether each is still this claim's."""
        async with self.uow_factory() as uow:
            claims = [(item.row.id, item.row.attempts) for item in items]
            started = await uow.outbox.begin(self.worker_id, claims, items[0].now, self.lease)
            await uow.commit()
        return [item.row.id in started for item in items]

    async def _apply(self, uow: DeliveryUnitOfWork, item: _Outcome, pauses: dict[str, list[float]]) -> None:
        row, verdict = item.row, item.verdict
        await self.finish(
            uow, row, verdict.status, verdict.retry_at, item.code, verdict.reason, item.outcome.activity_id
        )
        if verdict.pause_tenant_until is not None:
            paused = item.bucket or row.tenant_id
            until = verdict.pause_tenant_until.timestamp()
            self.pacer.pause(paused, until)
            pauses.setdefault(paused, []).append(until)
        if verdict.unreachable and row.user_id is not None:
            await uow.outbox.mark_unreachable(row.user_id, verdict.reason, item.now)
        if row.survey_instance_id and row.operation == "send" and verdict.status in FINAL_FOR_SURVEYS:
            await uow.surveys.delivered(
                row.survey_instance_id, verdict.status.value, item.outcome.activity_id, item.now
            )

    async def finish(
        self,
        uow: DeliveryUnitOfWork,
        row: Queued,
        status: Status,
        retry_at: datetime | None,
        code: int | None,
        reason: str | None,
        activity_id: str | None,
    ) -> None:
        kept = await uow.outbox.finish(
            row.id,
            self.worker_id,
            status=status.value,
            now=self.clock(),
            retry_at=retry_at,
            status_code=code,
            error=None if status is Status.SENT else reason,
            activity_id=activity_id,
            attempt=row.attempts,
        )
        if not kept:
            log.warning("outbox row %s: lease lost before its result was recorded", row.id)
