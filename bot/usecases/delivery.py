"""Delivery workers: claim due outbox rows, respect Teams' limits, send, and record what happened.

Limits honoured before each send: per conversation, Teams' 7 / 1 s, 8 / 2 s, 60 / 30 s and 1800 / hour (aiolimiter
in the process, and the sends every process recorded), then the tenant's rate. One worker at a time sends to a tenant
(it holds the tenant's row in SQL, OutboxRepository.hold_tenants), so the tenant's rate is kept by that worker's own
sliding log of what it sent (bot.engagement.delivery.SendLog): each request counts from when it leaves until 50/rate
seconds after its answer, at most Teams' 50 count at once (45/s on average by default), and none leaves during a
pause after a 429 — whatever the number of worker processes.

A leaky bucket of capacity C leaking r per second lets C + r·T through in any window of T seconds. To stay inside
"N per T" counted over a sliding window, each conversation limiter is AsyncLimiter(N/2, T) (N/2 + N/2 = N).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import random
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from aiolimiter import AsyncLimiter

from bot import telemetry
from bot.engagement.asking import AskPolicy, quiet_refusal
from bot.engagement.delivery import (
    TEAMS_TENANT_LIMIT,
    AttemptResult,
    RetryPolicy,
    SendLog,
    Status,
    Verdict,
    judge,
    judge_opening,
    send_window,
    window_wait,
)
from bot.engagement.reach import pending_user
from storage.engine import DATABASE_UNAVAILABLE
from storage.models import ConversationReference, OutboxMessage
from storage.outbox import TenantHold
from storage.people import ConversationTarget
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)
Item = TypeVar("Item")

CONVERSATION_LIMITS = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))  # Teams, per bot per conversation


@dataclass(frozen=True)
class SendOutcome:
    result: AttemptResult
    activity_id: str | None = None


class MessageSender(Protocol):
    async def attempt(self, target: ConversationReference, card: dict[str, Any], summary: str) -> SendOutcome:
        """Send once; never raises for connector answers, only reports them."""

    async def attempt_update(
        self, target: ConversationReference, activity_id: str, card: dict[str, Any], summary: str
    ) -> SendOutcome:
        """Replace a card sent before, once."""

    async def attempt_delete(self, target: ConversationReference, activity_id: str) -> SendOutcome:
        """Take a card back, once."""


@dataclass(frozen=True)
class OpenOutcome:
    """The answer to opening a person's chat: the conversation id, or what Teams / Graph said instead."""

    result: AttemptResult
    conversation_id: str | None = None


class ChatOpener(Protocol):
    async def attempt_open(self, anchor: ConversationReference, aad_object_id: str) -> OpenOutcome:
        """Bot Framework create_conversation for one person, through the tenant's service URL; once."""


class AppInstaller(Protocol):
    async def attempt_install(
        self, tenant_id: str, aad_object_id: str, pace: Callable[[], Awaitable[None]]
    ) -> OpenOutcome:
        """Install the app for the person (Microsoft Graph) and return the chat it opened; once. `pace` is awaited
        right before the install request (the tenant's install rate)."""


# Graph: at most 30 installs per second per tenant; 25 on average leaves 200 ms for jitter on the way (send_window)
GRAPH_INSTALL_LIMIT = 30
MOST_IN_HAND = 1024  # rows one worker keeps in hand, however many tenants it may hold
# a request is marked as leaving (in SQL) this long before its moment, the mark's round trip hidden in the wait
MARK_AHEAD = 0.05
GRAPH_INSTALLS_PER_SECOND = 25.0


def _graph_bucket(tenant: str) -> str:
    """The send log (and tenant_rates row) of a tenant's Graph installs, held with the tenant."""
    return f"graph:{tenant}"


class _TenantMoved(Exception):
    """The tenant's hold ran out and another worker took it: this worker must not send to it any more."""


@dataclass
class _Turnstile:
    """One chat opening at a time per person; forgotten when nobody waits for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


FINAL_FOR_SURVEYS = (Status.SENT, Status.FAILED, Status.UNKNOWN)  # a survey's delivery is settled


@dataclass(frozen=True)
class _Outcome:
    """An attempt's outcome waiting to be written (DeliveryWorker._record)."""

    row: OutboxMessage
    verdict: Verdict
    code: int | None
    outcome: SendOutcome
    now: datetime
    bucket: str | None


@dataclass(frozen=True)
class _Start:
    """A row whose request is about to leave, waiting for that to be written (DeliveryWorker._start)."""

    row: OutboxMessage
    now: datetime


@dataclass
class _Known:
    """What the claim's transaction looked up about a batch's conversations: each one's stored reference (a live
    one) and the sends every process recorded into it within Teams' longest window."""

    conversations: dict[str, ConversationReference]
    sent: dict[str, list[datetime]]
    used: set[str] = field(default_factory=set)

    @classmethod
    async def look_up(cls, uow: UnitOfWork, rows: Sequence[OutboxMessage], now: datetime) -> _Known:
        ids = {row.conversation_id for row in rows if pending_user(row.conversation_id) is None}
        if not ids:
            return cls({}, {})
        live = {c: ref for c, ref in (await uow.conversations.get_many(ids)).items() if ref.removed_at is None}
        longest = max(seconds for _, seconds in CONVERSATION_LIMITS)
        return cls(live, await uow.outbox.recent_sends(list(live), now - timedelta(seconds=longest)))

    def first_look(self, conversation_id: str) -> tuple[ConversationReference, list[datetime]] | None:
        """The conversation and its recorded sends, once per conversation; None when unknown here (gone, opened
        since, or already used by an earlier send of this batch): then the caller looks it up itself."""
        if conversation_id in self.used or conversation_id not in self.conversations:
            return None
        self.used.add(conversation_id)
        return self.conversations[conversation_id], self.sent.get(conversation_id, [])


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


@dataclass(frozen=True)
class DeliveryConfig:
    tenant_rate_per_second: float = 45.0  # on average; Microsoft: 50 requests/s per app per tenant
    tenant_limit_per_second: int = TEAMS_TENANT_LIMIT  # never more than this in any second (30 in older revisions)
    # a worker sends to at most this many tenants at once (as many as its CPU keeps at full rate): more tenants go to
    # other workers, or wait until one of these has nothing due
    tenants_per_worker: int = 4
    lease: timedelta = timedelta(seconds=60)
    batch_size: int = 20  # rows per claim
    # sends in hand per tenant held: most wait for their tenant's log to have room, and rows also wait for their
    # claim's round trip and their outcome's write, so keeping a tenant at full rate takes more rows than requests in
    # flight (with fewer, some tenants fell short of the ceiling)
    rows_per_tenant: int = 32
    concurrency: int | None = None  # rows in hand at once; by default rows_per_tenant for each tenant it may hold
    idle_poll_seconds: float = 0.5
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # quiet hours and weekends, checked again for messages marked quiet_hours when they are claimed for sending;
    # None: not checked
    quiet: AskPolicy | None = None

    @property
    def in_hand(self) -> int:
        return self.concurrency or min(MOST_IN_HAND, self.rows_per_tenant * max(1, self.tenants_per_worker))

    @property
    def hold_seconds(self) -> float:
        """How long a worker holds a tenant between renewals; within the lease, so a dead worker's rows and tenants
        come back together."""
        return min(10.0, self.lease.total_seconds())

    @property
    def quiet_seconds(self) -> float:
        """How long the requests a holder sent count in its tenant's windows (the longest of its send logs)."""
        return max(
            send_window(self.tenant_limit_per_second, self.tenant_rate_per_second),
            send_window(GRAPH_INSTALL_LIMIT, GRAPH_INSTALLS_PER_SECOND),
        )


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


@dataclass
class DeliveryWorker:
    uow_factory: Callable[[], UnitOfWork]
    sender: MessageSender
    worker_id: str
    clock: Callable[[], datetime]
    config: DeliveryConfig = field(default_factory=DeliveryConfig)
    rng: random.Random = field(default_factory=random.Random)
    conversations: ConversationLimiter = field(default_factory=ConversationLimiter)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests pass one that moves their clock
    opener: ChatOpener | None = None  # opens chats for messages queued to people without one (NURTURE_OPEN_CHATS)
    installer: AppInstaller | None = None  # proactive install through Graph when Teams refuses to open a chat
    _opening: dict[str, _Turnstile] = field(default_factory=dict)
    _tenant_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _logs: dict[str, SendLog] = field(default_factory=dict)  # per bucket: what this worker sent, when
    _answers: dict[str, asyncio.Event] = field(default_factory=dict)  # per bucket: an answer came back
    _held: dict[str, float] = field(default_factory=dict)  # tenants this worker sends to → hold ends (epoch)
    _quiet: dict[str, float] = field(default_factory=dict)  # tenant → no sends before (the previous holder's)
    _rows_of: Counter[str] = field(default_factory=Counter)  # rows in hand per tenant
    _paused_until: dict[str, float] = field(default_factory=dict)  # pauses (429) this worker was told about
    # writes that arrive while one is under way go together in the next transaction (GroupCommit); the marks of
    # requests about to leave have a queue of their own, so they never wait behind a batch of outcomes
    _outcomes: GroupCommit[_Outcome] = field(init=False)
    _starts: GroupCommit[_Start] = field(init=False)
    _in_hand: set[asyncio.Task[None]] = field(default_factory=set)  # deliveries under way
    # rows in hand not yet leaving: id → (claim number, lease end as epoch seconds), renewed while they wait
    _leases: dict[int, tuple[int, float]] = field(default_factory=dict)
    # rows in hand that must not arrive in their recipient's night: id → the recipient's time zone
    _zones: dict[int, str | None] = field(default_factory=dict)
    _failures: list[BaseException] = field(default_factory=list)  # of deliveries that ended in an exception

    def __post_init__(self) -> None:
        self._outcomes = GroupCommit(self._write_outcomes)
        self._starts = GroupCommit(self._write_starts)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: claim, deliver, repeat. Rows in hand are finished before returning (drain).

        A lost database (a PostgreSQL restart, a network blip) does not end the worker: it waits and tries again
        (the pool replaces dead connections). Nor does anything unforeseen: it is logged with its traceback and the
        worker goes on; a row whose send it broke is claimed again when its lease ends.
        """
        outage = 0
        while not stop.is_set():
            try:
                await self._pump(stop)
                outage = 0
            except DATABASE_UNAVAILABLE as exc:
                outage += 1
                wait = min(5.0, 0.2 * 2**outage)
                log.warning(
                    "database unavailable (%s); worker %s retries in %.1f s", type(exc).__name__, self.worker_id, wait
                )
                await asyncio.sleep(wait)
                continue
            except Exception:
                outage += 1
                wait = min(5.0, 0.2 * 2**outage)
                log.exception("delivery worker %s failed; it goes on in %.1f s", self.worker_id, wait)
                await asyncio.sleep(wait)
                continue
        while self._in_hand:  # stopping: what is in hand is finished, nothing more is claimed
            await asyncio.wait(self._in_hand)
        await self._release_all()
        for failure in self._failures:
            log.error("delivery worker %s: a send failed while stopping", self.worker_id, exc_info=failure)
        self._failures.clear()

    async def _pump(self, stop: asyncio.Event | None) -> None:
        """Keep up to `in_hand` rows in hand, claiming more as sends finish (no batch waits for its slowest
        row); return when `stop` is set, or, without one, when nothing is due and nothing is in hand (drain).

        A delivery that ended in an exception is raised here once it is done (its row is claimed again when its
        lease ends); the others go on.
        """
        enough = max(1, min(self.config.batch_size, self.config.in_hand) // 2)  # room worth a claim
        misses = 0  # claims in a row that found nothing with nothing in hand
        while stop is None or not stop.is_set():
            await self._renew_leases()
            room = self.config.in_hand - len(self._in_hand)
            idle = not self._in_hand
            claimed = await self._claim_and_start(min(room, self.config.batch_size)) if room >= enough else 0
            if claimed:
                misses = 0
            elif idle:
                misses += 1
            if not self._in_hand:
                if stop is None:
                    if self._failures:
                        raise self._failures.pop(0)
                    if misses >= 2:  # draining, and twice nothing to claim with nothing in hand: done
                        await self._release_all()
                        return
                    if misses == 1:
                        # look once more, a moment later: another worker's claim may have had the rows locked (SKIP
                        # LOCKED) only to give back those of tenants it does not take
                        await asyncio.sleep(0.05)
                    continue
                try:
                    await asyncio.wait_for(stop.wait(), self.config.idle_poll_seconds)
                except TimeoutError:
                    pass
            elif claimed == 0 or room - claimed < enough:
                # full, or nothing due now: wait for a send to finish (and look for new rows now and then, and keep
                # the leases of rows that wait long, behind a 429's pause, say)
                timeout = self.config.lease.total_seconds() / 4 if claimed else self.config.idle_poll_seconds
                await asyncio.wait(self._in_hand, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if self._failures:
                raise self._failures.pop(0)

    async def _claim_and_start(self, count: int) -> int:
        rows, known = await self._claim(count)
        for row in rows:
            task = asyncio.ensure_future(self.deliver(row, known))
            self._in_hand.add(task)
            self._rows_of[row.tenant_id] += 1
            task.add_done_callback(functools.partial(self._delivered, row.tenant_id))
        return len(rows)

    async def _renew_leases(self) -> None:
        """Rows that have waited in hand for half their lease keep it: otherwise the lease would run out while they
        wait for their tenant's turn, and the row would be claimed again (by this worker or another) and wait anew."""
        now = self.clock()
        soon = now.timestamp() + self.config.lease.total_seconds() / 2
        due = [(row_id, attempt) for row_id, (attempt, ends) in self._leases.items() if ends < soon]
        if not due:
            return
        until = now + self.config.lease
        try:
            async with self.uow_factory() as uow:
                kept = await uow.outbox.renew(self.worker_id, due, until)
                await uow.commit()
        except DATABASE_UNAVAILABLE as exc:
            log.warning("database unavailable (%s); leases of rows in hand not renewed", type(exc).__name__)
            return
        for row_id, attempt in due:
            if row_id in kept:
                self._leases[row_id] = (attempt, until.timestamp())
            else:  # claimed again elsewhere: starting it will fail, and it is not renewed again
                self._leases.pop(row_id, None)

    async def _claim(self, count: int) -> tuple[Sequence[OutboxMessage], _Known | None]:
        """One transaction: settle rows dead workers left in flight, lease due rows, take or renew their tenants (rows
        of a tenant another worker took first go back), let go of held tenants with nothing in hand, hold rows that
        would arrive in their recipient's night until morning, and look up the rows' conversations."""
        cap = max(1, self.config.tenants_per_worker)
        async with self.uow_factory() as uow:
            now = self.clock()
            # tenants with rows in hand stay held; a full hand of them takes rows of no other tenant. Held tenants
            # with nothing in hand go unless this claim brings rows of theirs (so a drain never stops early)
            busy = {t for t in self._held if self._rows_of[t] > 0}
            only = busy if len(busy) >= cap else None
            if only is None:
                await self._settle_abandoned(uow, now)
            rows = await uow.outbox.claim(self.worker_id, now, self.config.lease, count, only=only)
            tenants = {row.tenant_id for row in rows}
            kept = busy | (tenants & self._held.keys())
            new = sorted(tenants - self._held.keys())[: max(0, cap - len(kept))]
            wanted = (tenants & self._held.keys()) | set(new)
            epoch = now.timestamp()
            held = await uow.outbox.hold_tenants(
                self.worker_id, wanted, epoch, self.config.hold_seconds, self.config.quiet_seconds
            )
            if len(held) < len(tenants):
                await uow.outbox.unclaim(self.worker_id, [row.id for row in rows if row.tenant_id not in held])
                rows = [row for row in rows if row.tenant_id in held]
            rows = await self._outside_quiet_hours(uow, rows, now)
            idle = [t for t in self._held if t not in held and self._rows_of[t] == 0]
            if idle:
                await uow.outbox.release_tenants(self.worker_id, {t: self._quiet_after(t) for t in idle})
            taken = [t for t in held if t not in self._held]
            graph_pauses = await uow.outbox.pauses([_graph_bucket(t) for t in taken]) if self.installer else {}
            known = await _Known.look_up(uow, rows, now) if rows else None
            await uow.commit()
        for tenant in idle:
            self._forget_tenant(tenant)
        for tenant in tenants - held.keys():
            if self._rows_of[tenant] == 0:
                self._forget_tenant(tenant)  # another worker took it over: our hold had run out
        self._note_holds(held, epoch)
        for bucket, until in graph_pauses.items():
            self._pause(bucket, until)
        lease_ends = epoch + self.config.lease.total_seconds()
        self._leases.update((row.id, (row.attempts, lease_ends)) for row in rows)
        return rows, known

    async def _settle_abandoned(self, uow: UnitOfWork, now: datetime) -> None:
        """Rows a dead worker left after their request may have left are not sent again (OutboxRepository)."""
        abandoned = await uow.outbox.settle_abandoned(now, resend=self.config.retry.resend_unknown)
        for row_id, survey in abandoned:
            log.warning("outbox row %s: its worker stopped mid-send; delivery unknown, not resent", row_id)
            if survey is not None:
                await uow.surveys.delivered(survey, Status.UNKNOWN.value, None, now)

    async def _outside_quiet_hours(
        self, uow: UnitOfWork, rows: Sequence[OutboxMessage], now: datetime
    ) -> Sequence[OutboxMessage]:
        """The rows that may leave now; a row marked quiet_hours whose recipient is in their quiet hours or weekend
        goes back to the queue until their morning (it was queued in their day, but waited)."""
        waiting = [row for row in rows if row.quiet_hours and row.user_id is not None]
        if self.config.quiet is None or not waiting:
            return rows
        zones = await uow.users.time_zones({row.user_id for row in waiting if row.user_id is not None})
        held = set()
        for row in waiting:
            zone = zones.get(row.user_id or 0)
            morning = self._morning(zone, now)
            if morning is not None:
                await uow.outbox.give_back(self.worker_id, row.id, row.attempts, morning)
                log.info("outbox row %s waits for its recipient's morning (%s)", row.id, morning.isoformat())
                held.add(row.id)
            else:
                self._zones[row.id] = zone  # looked at again when it is about to leave (`_start`)
        return [row for row in rows if row.id not in held] if held else rows

    def _morning(self, zone: str | None, now: datetime) -> datetime | None:
        """When quiet hours or the weekend end where the recipient is; None when it is their day now."""
        refusal = quiet_refusal(self.config.quiet, now, zone) if self.config.quiet is not None else None
        return refusal.not_before if refusal is not None else None

    def _note_holds(self, held: dict[str, TenantHold], epoch: float) -> None:
        """What taking or renewing tenants at `epoch` told this worker: each hold's end, the tenant's pause, and for a
        tenant taken just now, since when the last holder's requests allow sending."""
        for tenant, hold in held.items():
            if tenant not in self._held:
                self._quiet[tenant] = max(self._quiet.get(tenant, 0.0), hold.quiet_until)
            self._paused_until[tenant] = max(self._paused_until.get(tenant, 0.0), hold.paused_until)
            self._held[tenant] = epoch + self.config.hold_seconds

    def _quiet_after(self, tenant: str) -> float:
        """When everything this worker sent to the tenant (its sends and its Graph installs) has left every window."""
        logs = (self._logs.get(tenant), self._logs.get(_graph_bucket(tenant)))
        return max((log.quiet_after() for log in logs if log is not None), default=0.0)

    def _forget_tenant(self, tenant: str) -> None:
        self._held.pop(tenant, None)
        self._quiet.pop(tenant, None)
        for bucket in (tenant, _graph_bucket(tenant)):
            self._logs.pop(bucket, None)
            self._tenant_locks.pop(bucket, None)
            self._answers.pop(bucket, None)
        self._rows_of.pop(tenant, None)

    async def _release_all(self) -> None:
        """Let other workers have this worker's tenants at once (stopping, or drained): otherwise they wait for the
        holds to run out."""
        idle = [t for t in self._held if self._rows_of[t] == 0]
        if not idle:
            return
        try:
            async with self.uow_factory() as uow:
                await uow.outbox.release_tenants(self.worker_id, {t: self._quiet_after(t) for t in idle})
                await uow.commit()
        except DATABASE_UNAVAILABLE as exc:
            log.warning("worker %s could not let go of its tenants (%s); their holds run out", self.worker_id, exc)
            return
        for tenant in idle:
            self._forget_tenant(tenant)

    def _delivered(self, tenant: str, task: asyncio.Task[None]) -> None:
        self._in_hand.discard(task)
        self._rows_of[tenant] -= 1
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            self._failures.append(failure)

    async def run_once(self) -> int:
        """Claim one batch and deliver it (tests that look at a single round)."""
        rows, known = await self._claim(self.config.batch_size)
        if not rows:
            return 0
        gate = asyncio.Semaphore(self.config.in_hand)

        async def one(row: OutboxMessage) -> None:
            async with gate:
                self._rows_of[row.tenant_id] += 1
                try:
                    await self.deliver(row, known)
                finally:
                    self._rows_of[row.tenant_id] -= 1

        await asyncio.gather(*(one(row) for row in rows))
        return len(rows)

    async def drain(self) -> None:
        """Deliver everything due now (tests, `nurture deliver --once`)."""
        await self._pump(None)

    async def deliver(self, row: OutboxMessage, known: _Known | None = None) -> None:
        try:
            await self._deliver(row, known)
        except _TenantMoved:
            log.info("outbox row %s: tenant %s is another worker's now; the row goes back", row.id, row.tenant_id)
            async with self.uow_factory() as uow:
                await uow.outbox.unclaim(self.worker_id, [row.id])
                await uow.commit()
        finally:
            self._leases.pop(row.id, None)
            self._zones.pop(row.id, None)

    async def _deliver(self, row: OutboxMessage, known: _Known | None) -> None:
        conversation_id = row.conversation_id
        if pending_user(row.conversation_id) is not None:
            opened = await self._open_chat(row)
            if opened is None:
                return  # the outcome (retry later, failed, cancelled) is recorded
            conversation_id = opened
        # the in-process windows first (sends in flight here that no process has recorded yet), then the recorded
        # windows, and the tenant's rate last, right before the request: it counts the request as leaving then
        await self.conversations.acquire(conversation_id)
        target = await self._clearance(row, conversation_id, known)
        if target is None:
            return
        failure: Exception | None = None
        try:
            outcome = await self._attempt(row, target)
        except Exception as exc:  # a fault of ours: the request may have left, so it is as unknown as a timeout
            failure = exc
            outcome = SendOutcome(AttemptResult(None, f"the sender failed ({type(exc).__name__})"))
        finally:
            self._answered(row.tenant_id)
        now = self.clock()
        verdict = judge(outcome.result, row.attempts, now, self.config.retry, self.rng)
        if verdict.pause_tenant_until is not None:  # at once: requests cleared but not yet gone wait for it too
            self._pause(row.tenant_id, verdict.pause_tenant_until.timestamp())
        # a success's exact 2xx is not reported by the SDK: only codes actually seen are stored
        code = None if verdict.status is Status.SENT else outcome.result.status_code
        # Teams has answered: the outcome must be written down, or the row would end `unknown` when its lease ends.
        # If the database is briefly gone (a restart), keep the outcome in hand and retry within the lease.
        deadline = asyncio.get_running_loop().time() + self.config.lease.total_seconds() * 0.8
        while True:
            try:
                await self._record(row, verdict, code, outcome, now)
                break
            except DATABASE_UNAVAILABLE as exc:
                if asyncio.get_running_loop().time() > deadline:
                    log.error("outbox row %s: outcome %s could not be recorded (%s)", row.id, verdict.status, exc)
                    raise
                log.warning(
                    "database unavailable (%s); outbox row %s: outcome kept, retrying", type(exc).__name__, row.id
                )
                await asyncio.sleep(0.5)
        telemetry.sends.add(1, {"kind": row.kind, "outcome": verdict.status.value})
        if failure is not None:
            raise failure  # the worker logs it with its traceback and goes on

    async def _attempt(self, row: OutboxMessage, target: ConversationReference) -> SendOutcome:
        payload = json.loads(row.payload)
        card, summary = payload.get("card", {}), payload.get("summary", "")
        if row.operation == "update" and row.target_activity_id:
            return await self.sender.attempt_update(target, row.target_activity_id, card, summary)
        if row.operation == "delete" and row.target_activity_id:
            return await self.sender.attempt_delete(target, row.target_activity_id)
        return await self.sender.attempt(target, card, summary)

    async def _start(self, row: OutboxMessage) -> bool:
        """Write down that the row's request is about to leave, before it does: a crash from here on leaves the row
        `unknown`, never sent twice. False when the row must not be sent: this claim lost it (its lease ran out and
        it was claimed again), the database stayed away for most of a lease, or the row waited (a 429's pause) into
        its recipient's quiet hours (it goes back to the queue until their morning)."""
        self._leases.pop(row.id, None)  # starting renews the lease itself
        morning = self._morning(self._zones[row.id], self.clock()) if row.id in self._zones else None
        if morning is not None:  # it waited (behind a 429's pause) into the recipient's night
            async with self.uow_factory() as uow:
                await uow.outbox.give_back(self.worker_id, row.id, row.attempts, morning)
                await uow.commit()
            log.info("outbox row %s waits for its recipient's morning (%s)", row.id, morning.isoformat())
            return False
        deadline = asyncio.get_running_loop().time() + self.config.lease.total_seconds() * 0.8
        while True:
            try:
                started = await self._starts.write(_Start(row, self.clock()))
                break
            except DATABASE_UNAVAILABLE as exc:
                if asyncio.get_running_loop().time() > deadline:
                    log.error("outbox row %s: could not be marked as leaving (%s); not sent", row.id, exc)
                    return False
                log.warning("database unavailable (%s); outbox row %s waits to be sent", type(exc).__name__, row.id)
                await asyncio.sleep(0.5)
        if not started:
            log.warning("outbox row %s: lease lost before sending; its new holder sends it", row.id)
        return started

    async def _unstart(self, row: OutboxMessage, started: asyncio.Future[bool]) -> bool:
        """The row was marked as leaving, but its tenant was paused (a 429) before it left: the mark goes, and the
        row waits in hand for the pause to end, keeping its place. False when it was not this claim's after all."""
        if not await started:
            return False
        try:
            async with self.uow_factory() as uow:
                kept = await uow.outbox.unmark(self.worker_id, row.id, row.attempts)
                await uow.commit()
        except DATABASE_UNAVAILABLE as exc:  # it stays marked: a crash while it waits would leave it `unknown`
            log.warning("database unavailable (%s); outbox row %s waits marked as leaving", type(exc).__name__, row.id)
            return True
        return kept

    def _pause(self, bucket: str, until: float) -> None:
        self._paused_until[bucket] = max(self._paused_until.get(bucket, 0.0), until)

    async def _record(
        self,
        row: OutboxMessage,
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
            started = await uow.outbox.begin(self.worker_id, claims, items[0].now, self.config.lease)
            await uow.commit()
        return [item.row.id in started for item in items]

    async def _apply(self, uow: UnitOfWork, item: _Outcome, pauses: dict[str, list[float]]) -> None:
        row, verdict = item.row, item.verdict
        await self._finish(
            uow, row, verdict.status, verdict.retry_at, item.code, verdict.reason, item.outcome.activity_id
        )
        if verdict.pause_tenant_until is not None:
            paused = item.bucket or row.tenant_id
            until = verdict.pause_tenant_until.timestamp()
            self._pause(paused, until)
            pauses.setdefault(paused, []).append(until)
        if verdict.unreachable and row.user_id is not None:
            await uow.outbox.mark_unreachable(row.user_id, verdict.reason, item.now)
        if row.survey_instance_id and row.operation == "send" and verdict.status in FINAL_FOR_SURVEYS:
            await uow.surveys.delivered(
                row.survey_instance_id, verdict.status.value, item.outcome.activity_id, item.now
            )

    async def _finish(
        self,
        uow: UnitOfWork,
        row: OutboxMessage,
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

    async def _open_chat(self, row: OutboxMessage) -> str | None:
        """Open the chat a message waits for: create_conversation, then (when configured and Teams refuses) a Graph
        proactive install. Returns the conversation id, or None when the row's outcome was recorded instead.

        One open at a time per person in this process; other processes never hold the same person's rows at once
        (OutboxRepository.claim keeps a conversation id, pending ones included, to one process).
        """
        turnstile = self._opening.setdefault(row.conversation_id, _Turnstile())
        turnstile.users += 1
        try:
            async with turnstile.lock:
                return await self._open_chat_locked(row)
        finally:
            turnstile.users -= 1
            if turnstile.users == 0:  # nobody waits for this person any more
                del self._opening[row.conversation_id]

    async def _open_chat_locked(self, row: OutboxMessage) -> str | None:
        user_id = pending_user(row.conversation_id)
        async with self.uow_factory() as uow:
            user = await uow.users.get_by_id(user_id) if user_id is not None else None
            chat = await uow.conversations.personal_for(user.id) if user is not None else None
            if chat is not None:  # opened meanwhile (an earlier message, or the person wrote to the bot)
                await uow.outbox.retarget(row.conversation_id, chat.conversation_id)
                await uow.commit()
                return chat.conversation_id
            anchor = await uow.conversations.anchor(row.tenant_id) if user is not None else None
            if user is None or anchor is None or self.opener is None or user.uninstalled_at is not None:
                reason = "no personal chat, and no way to open one (bot not in the tenant, or opening chats is off)"
                await self._finish(uow, row, Status.CANCELLED, None, None, reason, None)
                await uow.commit()
                return None
        await self._turn(row.tenant_id, row.tenant_id)  # it counts against the tenant's rate
        try:
            outcome = await self.opener.attempt_open(anchor, user.aad_object_id)
        finally:
            self._answered(row.tenant_id)
        bucket = row.tenant_id
        if outcome.conversation_id is None and self.installer is not None and outcome.result.status_code in (403, 404):
            # not in a team or chat with the bot: install the app for the person, which opens the chat
            bucket = _graph_bucket(row.tenant_id)

            paced = False

            async def pace() -> None:
                nonlocal paced
                await self._turn(bucket, row.tenant_id, GRAPH_INSTALL_LIMIT, GRAPH_INSTALLS_PER_SECOND)
                paced = True

            try:
                outcome = await self.installer.attempt_install(row.tenant_id, user.aad_object_id, pace)
            finally:
                if paced:
                    self._answered(bucket)
        now = self.clock()
        if outcome.conversation_id is None:
            verdict = judge_opening(outcome.result, row.attempts, now, self.config.retry, self.rng)
            code = outcome.result.status_code
            await self._record(row, verdict, code, SendOutcome(outcome.result), now, bucket)
            telemetry.sends.add(1, {"kind": row.kind, "outcome": f"open-{verdict.status.value}"})
            return None
        async with self.uow_factory() as uow:
            target = ConversationTarget(
                conversation_id=outcome.conversation_id,
                tenant_id=row.tenant_id,
                scope="personal",
                channel_id=anchor.channel_id,
                service_url=anchor.service_url,
                bot_id=anchor.bot_id,
                user_id=user.id,
            )
            await uow.conversations.upsert(target, now)
            if user.installed_at is None:
                await uow.users.mark_installed(user.id, now)  # the app is in their personal scope now
            await uow.outbox.retarget(row.conversation_id, outcome.conversation_id)
            await uow.commit()
        log.info("opened a personal chat for outbox row %s (%s)", row.id, bucket)
        return outcome.conversation_id

    async def _clearance(
        self, row: OutboxMessage, conversation_id: str, known: _Known | None
    ) -> ConversationReference | None:
        """Wait until the conversation may take one more message, then for the tenant's turn; the conversation, or
        None when the row must not be sent now (the conversation is gone and the row cancelled; or see `_turn`).

        The first send into a conversation in a batch uses what the claim's transaction looked up; later ones (and
        any after a wait) look again, since this batch's own sends have changed the windows.
        """
        first = known.first_look(conversation_id) if known is not None else None
        target: ConversationReference | None
        while True:
            if first is not None:
                target, conversation_wait = first[0], window_wait(first[1], self.clock(), CONVERSATION_LIMITS)
                first = None
            else:
                target, conversation_wait = await self._conversation_check(row, conversation_id)
            if target is None:
                return None
            if conversation_wait <= 0:
                break
            await self.sleep(min(conversation_wait, 5.0))
        return target if await self._turn(row.tenant_id, row.tenant_id, leaving=row) else None

    async def _conversation_check(
        self, row: OutboxMessage, conversation_id: str
    ) -> tuple[ConversationReference | None, float]:
        """One transaction: the conversation, and the wait Teams' per-conversation windows ask for, counted over the
        sends every process recorded (OutboxRepository.conversation_wait)."""
        async with self.uow_factory() as uow:
            target = await uow.conversations.get(conversation_id)
            if target is None or target.removed_at is not None:
                await self._finish(uow, row, Status.CANCELLED, None, None, "conversation gone or bot removed", None)
                await uow.commit()
                return None, 0.0
            return target, await uow.outbox.conversation_wait(conversation_id, self.clock(), CONVERSATION_LIMITS)

    async def _turn(
        self,
        bucket: str,
        tenant: str,
        limit: int | None = None,
        rate: float | None = None,
        leaving: OutboxMessage | None = None,
    ) -> bool:
        """Wait until one more request to the bucket (the tenant, or its Graph installs) keeps it within `limit` in any
        limit/rate seconds, and outside the tenant's pause; then count the request as leaving now.

        The worker holds the tenant meanwhile (renewing the hold when half of it is gone): nobody else sends to it,
        so its own log of what it sent is the tenant's. A request that waited longer than planned (the process was
        busy or descheduled) still goes: the log counts requests from when they really left until a window after
        their answers, so a late one never crowds Teams' second, and the time lost is made up by the requests after
        it (`_answered` is called once the request is answered). Raises _TenantMoved when the hold ran
        out and another worker took the tenant.

        `leaving`: the row whose request this is, marked as leaving (`_start`) once it is next in line and its moment
        is at most MARK_AHEAD seconds away, so that the database round trip overlaps the wait for that moment instead
        of adding to every request's time in the tenant's window; if the tenant is paused after that (a 429), the
        mark goes until the pause is nearly over. Returns False when it must not leave: this claim lost the row.
        """
        limit = limit or self.config.tenant_limit_per_second
        rate = rate or self.config.tenant_rate_per_second
        sends = self._logs.get(bucket)
        if sends is None:
            sends = self._logs[bucket] = SendLog(limit, send_window(limit, rate))
        async with self._tenant_locks.setdefault(bucket, asyncio.Lock()):
            planned: float | None = None
            slept_until = float("-inf")  # a sleep of d seconds counts as d seconds, whatever the clock says after it
            started: asyncio.Future[bool] | None = None  # the mark of `leaving`, once asked for
            while True:
                now = max(self.clock().timestamp(), slept_until)
                at = max(sends.next_free(now), self._quiet.get(tenant, 0.0), self._paused_until.get(bucket, 0.0))
                if leaving is not None and started is not None and at - now > MARK_AHEAD:  # paused since the mark
                    if not await self._unstart(leaving, started):
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
                    started = asyncio.ensure_future(self._start(leaving))
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

    def _answered(self, bucket: str) -> None:
        """The request `_turn` let go to the bucket has its answer (or was given up): it counts until a window after
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
        _TenantMoved when another worker holds it. While the database is away, sends go on until a quarter of the hold
        is left, then wait for it."""
        hold = self.config.hold_seconds
        left = self._held.get(tenant, 0.0) - self.clock().timestamp()
        if left > hold / 2:
            return True
        try:
            async with self.uow_factory() as uow:
                now = self.clock().timestamp()
                held = await uow.outbox.hold_tenants(self.worker_id, [tenant], now, hold, self.config.quiet_seconds)
                await uow.commit()
        except DATABASE_UNAVAILABLE as exc:
            if left > hold / 4:
                return True
            log.warning("database unavailable (%s); sends to tenant %s wait for it", type(exc).__name__, tenant)
            await asyncio.sleep(0.5)
            return False
        if tenant not in held:
            self._held.pop(tenant, None)
            raise _TenantMoved(tenant)
        self._note_holds(held, now)
        return False
