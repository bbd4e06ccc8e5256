"""Pacing: Teams' limits kept in this process, per conversation and per tenant.

Per conversation, Teams' 7 / 1 s, 8 / 2 s, 60 / 30 s and 1800 / hour: a leaky bucket of capacity C leaking r per
second lets C + r·T through in any window of T seconds, so to stay inside "N per T" over a sliding window each
limiter is AsyncLimiter(N/2, T) (N/2 + N/2 = N); the worker also checks the sends every process recorded.

Per tenant: one worker at a time sends to a tenant (it holds the tenant's row in SQL, OutboxRepository.hold_tenants),
so the tenant's rate is kept by that worker's own sliding log of what it sent (bot.engagement.delivery.SendLog): each
request counts from when it leaves until 50/rate seconds after its answer, at most Teams' 50 count at once (45/s on
average by default), and none leaves during a pause after a 429, whatever the number of worker processes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiolimiter import AsyncLimiter

from bot.engagement.delivery import SendLog, send_window
from bot.usecases.ports import DATABASE_UNAVAILABLE, DeliveryUnitOfWork
from storage.outbox import TenantHold

log = logging.getLogger(__name__)

CONVERSATION_LIMITS = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))  # Teams, per bot per conversation
# a request is marked as leaving (in SQL) this long before its moment, the mark's round trip hidden in the wait
MARK_AHEAD = 0.05


def graph_bucket(tenant: str) -> str:
    """The send log (and tenant_rates row) of a tenant's Graph installs, held with the tenant."""
    return f"graph:{tenant}"


class TenantMoved(Exception):
    """The tenant's hold ran out and another worker took it: this worker must not send to it any more."""


class ConversationLimiter:
    """Teams' per-conversation windows, one set of limiters per recent conversation."""

    def __init__(self, limits: tuple[tuple[int, float], ...] = CONVERSATION_LIMITS, remember: int = 10_000) -> None:
        self.limits = limits
        self.remember = remember
        self._by_conversation: OrderedDict[str, list[AsyncLimiter]] = OrderedDict()

    async def acquire(self, conversation_id: str) -> None:
        limiters = self._by_conversation.get(conversation_id)
        if limiters is None:
            limiters = [AsyncLimiter(count / 2, period) for count, period in self.limits]
            self._by_conversation[conversation_id] = limiters
            if len(self._by_conversation) > self.remember:
                self._by_conversation.popitem(last=False)
        self._by_conversation.move_to_end(conversation_id)
        for limiter in limiters:
            await limiter.acquire()


@dataclass(frozen=True)
class Leaving:
    """The row a request is for, as `TenantPacer.turn` needs it: `mark` writes down that it is about to leave
    (True when it may), `unmark` takes the mark back when a pause came after it (True when the row is still ours)."""

    mark: Callable[[], Awaitable[bool]]
    unmark: Callable[[asyncio.Future[bool]], Awaitable[bool]]


@dataclass
class TenantPacer:
    """The tenants one worker holds, and the pace of its requests to each: its send logs, 429 pauses and holds."""

    uow_factory: Callable[[], DeliveryUnitOfWork]
    worker_id: str
    clock: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]]
    limit_per_second: int
    rate_per_second: float
    hold_seconds: float
    quiet_seconds: float
    held: dict[str, float] = field(default_factory=dict)  # tenants this worker sends to → hold ends (epoch)
    _quiet: dict[str, float] = field(default_factory=dict)  # tenant → no sends before (the previous holder's)
    _paused_until: dict[str, float] = field(default_factory=dict)  # pauses (429) this worker was told about
    _logs: dict[str, SendLog] = field(default_factory=dict)  # per bucket: what this worker sent, when
    _answers: dict[str, asyncio.Event] = field(default_factory=dict)  # per bucket: an answer came back
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def pause(self, bucket: str, until: float) -> None:
        self._paused_until[bucket] = max(self._paused_until.get(bucket, 0.0), until)

    def note_holds(self, held: dict[str, TenantHold], epoch: float) -> None:
        """What taking or renewing tenants at `epoch` told this worker: each hold's end, the tenant's pause, and for a
        tenant taken just now, since when the last holder's requests allow sending."""
        for tenant, hold in held.items():
            if tenant not in self.held:
                self._quiet[tenant] = max(self._quiet.get(tenant, 0.0), hold.quiet_until)
            self._paused_until[tenant] = max(self._paused_until.get(tenant, 0.0), hold.paused_until)
            self.held[tenant] = epoch + self.hold_seconds

    def quiet_after(self, tenant: str) -> float:
        """When everything this worker sent to the tenant (its sends and its Graph installs) has left every window."""
        logs = (self._logs.get(tenant), self._logs.get(graph_bucket(tenant)))
        return max((log.quiet_after() for log in logs if log is not None), default=0.0)

    def forget(self, tenant: str) -> None:
        self.held.pop(tenant, None)
        self._quiet.pop(tenant, None)
        for bucket in (tenant, graph_bucket(tenant)):
            self._logs.pop(bucket, None)
            self._locks.pop(bucket, None)
            self._answers.pop(bucket, None)

    async def turn(
        self,
        bucket: str,
        tenant: str,
        limit: int | None = None,
        rate: float | None = None,
        leaving: Leaving | None = None,
    ) -> bool:
        """Wait until one more request to the bucket (the tenant, or its Graph installs) keeps it within `limit` in any
        limit/rate seconds, and outside the tenant's pause; then count the request as leaving now.

        The worker holds the tenant meanwhile (renewing the hold when half of it is gone): nobody else sends to it,
        so its own log of what it sent is the tenant's. A request that waited longer than planned (the process was
        busy or descheduled) still goes: the log counts requests from when they really left until a window after
        their answers, so a late one never crowds Teams' second, and the time lost is made up by the requests after
        it (`answered` is called once the request is answered). Raises TenantMoved when the hold ran out and another
        worker took the tenant.

        `leaving`: the row whose request this is, marked as leaving (`Leaving.mark`) once it is next in line and its
        moment is at most MARK_AHEAD seconds away, so that the database round trip overlaps the wait for that moment
        instead of adding to every request's time in the tenant's window; if the tenant is paused after that (a 429),
        the mark goes until the pause is nearly over. Returns False when it must not leave: this claim lost the row.
        """
        limit = limit or self.limit_per_second
        rate = rate or self.rate_per_second
        sends = self._logs.get(bucket)
        if sends is None:
            sends = self._logs[bucket] = SendLog(limit, send_window(limit, rate))
        async with self._locks.setdefault(bucket, asyncio.Lock()):
            planned: float | None = None
            slept_until = float("-inf")  # a sleep of d seconds counts as d seconds, whatever the clock says after it
            started: asyncio.Future[bool] | None = None  # the mark of `leaving`, once asked for
            while True:
                now = max(self.clock().timestamp(), slept_until)
                at = max(sends.next_free(now), self._quiet.get(tenant, 0.0), self._paused_until.get(bucket, 0.0))
                if leaving is not None and started is not None and at - now > MARK_AHEAD:  # paused since the mark
                    if not await leaving.unmark(started):
                        return False
                    started = None
                    continue
                if at == math.inf:  # `limit` requests in flight: the next answer makes room
                    answer = self._answers.setdefault(bucket, asyncio.Event())
                    answer.clear()
                    await answer.wait()
                    continue
                if leaving is not None and started is None:
                    if at - now > MARK_AHEAD:  # wake up a little ahead of the moment, to mark the row then
                        slept_until = at - MARK_AHEAD
                        await self.sleep(at - MARK_AHEAD - now)
                        continue
                    started = asyncio.ensure_future(leaving.mark())
                if at > now:  # a microsecond more: clocks with microsecond steps (datetime) must pass `at`
                    planned = slept_until = at
                    await self.sleep(at - now + 1e-6)
                    continue
                if started is not None and not started.done():  # then look again: a 429 may have come meanwhile
                    await asyncio.wait([started])
                    continue
                if started is not None and not started.result():
                    return False
                if await self._keep(tenant):
                    sends.record(max(self.clock().timestamp(), slept_until), planned)
                    return True

    def answered(self, bucket: str) -> None:
        """The request `turn` let go to the bucket has its answer (or was given up): it counts until a window after
        now, and may make room for a request waiting on one in flight."""
        sends = self._logs.get(bucket)
        if sends is not None:
            sends.answered(self.clock().timestamp())
        answer = self._answers.get(bucket)
        if answer is not None:
            answer.set()

    async def _keep(self, tenant: str) -> bool:
        """Whether the worker may send to the tenant right now: True when its hold has more than half of it left, or
        has been renewed; False after a renewal that had to wait (the caller looks at its limits again). Raises
        TenantMoved when another worker holds it. While the database is away, sends go on until a quarter of the hold
        is left, then wait for it."""
        hold = self.hold_seconds
        left = self.held.get(tenant, 0.0) - self.clock().timestamp()
        if left > hold / 2:
            return True
        try:
            async with self.uow_factory() as uow:
                now = self.clock().timestamp()
                held = await uow.outbox.hold_tenants(self.worker_id, [tenant], now, hold, self.quiet_seconds)
                await uow.commit()
        except DATABASE_UNAVAILABLE as exc:
            if left > hold / 4:
                return True
            log.warning("database unavailable (%s); sends to tenant %s wait for it", type(exc).__name__, tenant)
            await asyncio.sleep(0.5)
            return False
        if tenant not in held:
            self.held.pop(tenant, None)
            raise TenantMoved(tenant)
        self.note_holds(held, now)
        return False
