"""Delivery workers: claim due outbox rows, keep Teams' limits, send, and record what happened.

A worker claims rows and holds their tenants (`_claim`), then delivers each row: it opens the person's chat when
needed (ChatOpenings), waits for the conversation's and the tenant's turn (ConversationLimiter, TenantPacer), marks
the row as leaving, sends (a MessageSender), and writes the outcome (OutcomeWriter).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import telemetry
from bot.engagement.asking import AskPolicy, quiet_refusal
from bot.engagement.delivery import (
    TEAMS_TENANT_LIMIT,
    AttemptResult,
    RetryPolicy,
    Status,
    judge,
    send_window,
    window_wait,
)
from bot.engagement.reach import pending_user
from bot.usecases.delivery.chats import GRAPH_INSTALL_LIMIT, GRAPH_INSTALLS_PER_SECOND, ChatOpenings
from bot.usecases.delivery.outcomes import OutcomeWriter
from bot.usecases.delivery.pacing import (
    CONVERSATION_LIMITS,
    ConversationLimiter,
    Leaving,
    TenantMoved,
    TenantPacer,
    graph_bucket,
)
from bot.usecases.delivery.ports import AppInstaller, ChatOpener, MessageSender, SendOutcome
from bot.usecases.ports import DATABASE_UNAVAILABLE, Conversation, DeliveryUnitOfWork, Queued

log = logging.getLogger(__name__)

MOST_IN_HAND = 1024  # rows one worker keeps in hand, however many tenants it may hold
_SHARED_WITH_PARTS = frozenset({"uow_factory", "worker_id", "clock", "sleep", "config", "rng", "opener", "installer"})


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


@dataclass
class _Known:
    """What the claim's transaction looked up about a batch's conversations: each one's stored reference (a live
    one) and the sends every process recorded into it within Teams' longest window."""

    conversations: dict[str, Conversation]
    sent: dict[str, list[datetime]]
    used: set[str] = field(default_factory=set)

    @classmethod
    async def look_up(cls, uow: DeliveryUnitOfWork, rows: Sequence[Queued], now: datetime) -> _Known:
        ids = {row.conversation_id for row in rows if pending_user(row.conversation_id) is None}
        if not ids:
            return cls({}, {})
        live = {c: ref for c, ref in (await uow.conversations.get_many(ids)).items() if ref.removed_at is None}
        longest = max(seconds for _, seconds in CONVERSATION_LIMITS)
        return cls(live, await uow.outbox.recent_sends(list(live), now - timedelta(seconds=longest)))

    def first_look(self, conversation_id: str) -> tuple[Conversation, list[datetime]] | None:
        """The conversation and its recorded sends, once per conversation; None when unknown here (gone, opened
        since, or already used by an earlier send of this batch): then the caller looks it up itself."""
        if conversation_id in self.used or conversation_id not in self.conversations:
            return None
        self.used.add(conversation_id)
        return self.conversations[conversation_id], self.sent.get(conversation_id, [])


@dataclass
class DeliveryWorker:
    uow_factory: Callable[[], DeliveryUnitOfWork]
    sender: MessageSender
    worker_id: str
    clock: Callable[[], datetime]
    config: DeliveryConfig = field(default_factory=DeliveryConfig)
    rng: random.Random = field(default_factory=random.Random)
    conversations: ConversationLimiter = field(default_factory=ConversationLimiter)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests pass one that moves their clock
    opener: ChatOpener | None = None  # opens chats for messages queued to people without one (NURTURE_OPEN_CHATS)
    installer: AppInstaller | None = None  # proactive install through Graph when Teams refuses to open a chat
    pacer: TenantPacer = field(init=False)
    outcomes: OutcomeWriter = field(init=False)
    chats: ChatOpenings = field(init=False)
    _rows_of: Counter[str] = field(default_factory=Counter)  # rows in hand per tenant
    _in_hand: set[asyncio.Task[None]] = field(default_factory=set)  # deliveries under way
    # rows in hand not yet leaving: id → (claim number, lease end as epoch seconds), renewed while they wait
    _leases: dict[int, tuple[int, float]] = field(default_factory=dict)
    # rows in hand that must not arrive in their recipient's night: id → the recipient's time zone
    _zones: dict[int, str | None] = field(default_factory=dict)
    _failures: list[BaseException] = field(default_factory=list)  # of deliveries that ended in an exception

    def __setattr__(self, name: str, value: object) -> None:
        # the pacer, the outcome writer and the chat openings are built from these: a change after that would reach
        # the worker but not them, so it is refused instead of half-applied
        if name in _SHARED_WITH_PARTS and "pacer" in self.__dict__:
            raise AttributeError(f"DeliveryWorker.{name} is fixed once the worker is built: pass it when building it")
        super().__setattr__(name, value)

    def __post_init__(self) -> None:
        config = self.config
        self.pacer = TenantPacer(
            self.uow_factory,
            self.worker_id,
            self.clock,
            self.sleep,
            config.tenant_limit_per_second,
            config.tenant_rate_per_second,
            config.hold_seconds,
            config.quiet_seconds,
        )
        self.outcomes = OutcomeWriter(self.uow_factory, self.worker_id, self.clock, config.lease, self.pacer)
        self.chats = ChatOpenings(
            self.uow_factory,
            self.clock,
            self.pacer,
            self.outcomes,
            config.retry,
            self.rng,
            self.opener,
            self.installer,
        )

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

    async def _claim(self, count: int) -> tuple[Sequence[Queued], _Known | None]:
        """One transaction: settle rows dead workers left in flight, lease due rows, take or renew their tenants (rows
        of a tenant another worker took first go back), let go of held tenants with nothing in hand, hold rows that
        would arrive in their recipient's night until morning, and look up the rows' conversations."""
        cap = max(1, self.config.tenants_per_worker)
        async with self.uow_factory() as uow:
            now = self.clock()
            # tenants with rows in hand stay held; a full hand of them takes rows of no other tenant. Held tenants
            # with nothing in hand go unless this claim brings rows of theirs (so a drain never stops early)
            busy = {t for t in self.pacer.held if self._rows_of[t] > 0}
            only = busy if len(busy) >= cap else None
            if only is None:
                await self._settle_abandoned(uow, now)
            rows = await uow.outbox.claim(self.worker_id, now, self.config.lease, count, only=only)
            tenants = {row.tenant_id for row in rows}
            kept = busy | (tenants & self.pacer.held.keys())
            new = sorted(tenants - self.pacer.held.keys())[: max(0, cap - len(kept))]
            wanted = (tenants & self.pacer.held.keys()) | set(new)
            epoch = now.timestamp()
            held = await uow.outbox.hold_tenants(
                self.worker_id, wanted, epoch, self.config.hold_seconds, self.config.quiet_seconds
            )
            if len(held) < len(tenants):
                await uow.outbox.unclaim(self.worker_id, [row.id for row in rows if row.tenant_id not in held])
                rows = [row for row in rows if row.tenant_id in held]
            rows = await self._outside_quiet_hours(uow, rows, now)
            idle = [t for t in self.pacer.held if t not in held and self._rows_of[t] == 0]
            if idle:
                await uow.outbox.release_tenants(self.worker_id, {t: self.pacer.quiet_after(t) for t in idle})
            taken = [t for t in held if t not in self.pacer.held]
            graph_pauses = await uow.outbox.pauses([graph_bucket(t) for t in taken]) if self.installer else {}
            known = await _Known.look_up(uow, rows, now) if rows else None
            await uow.commit()
        for tenant in idle:
            self._forget_tenant(tenant)
        for tenant in tenants - held.keys():
            if self._rows_of[tenant] == 0:
                self._forget_tenant(tenant)  # another worker took it over: our hold had run out
        self.pacer.note_holds(held, epoch)
        for bucket, until in graph_pauses.items():
            self.pacer.pause(bucket, until)
        lease_ends = epoch + self.config.lease.total_seconds()
        self._leases.update((row.id, (row.attempts, lease_ends)) for row in rows)
        return rows, known

    async def _settle_abandoned(self, uow: DeliveryUnitOfWork, now: datetime) -> None:
        """Rows a dead worker left after their request may have left are not sent again (OutboxRepository)."""
        abandoned = await uow.outbox.settle_abandoned(now, resend=self.config.retry.resend_unknown)
        for row_id, survey in abandoned:
            log.warning("outbox row %s: its worker stopped mid-send; delivery unknown, not resent", row_id)
            if survey is not None:
                await uow.surveys.delivered(survey, Status.UNKNOWN.value, None, now)

    async def _outside_quiet_hours(
        self, uow: DeliveryUnitOfWork, rows: Sequence[Queued], now: datetime
    ) -> Sequence[Queued]:
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

    def _forget_tenant(self, tenant: str) -> None:
        self.pacer.forget(tenant)
        self._rows_of.pop(tenant, None)

    async def _release_all(self) -> None:
        """Let other workers have this worker's tenants at once (stopping, or drained): otherwise they wait for the
        holds to run out."""
        idle = [t for t in self.pacer.held if self._rows_of[t] == 0]
        if not idle:
            return
        try:
            async with self.uow_factory() as uow:
                await uow.outbox.release_tenants(self.worker_id, {t: self.pacer.quiet_after(t) for t in idle})
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

        async def one(row: Queued) -> None:
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

    async def deliver(self, row: Queued, known: _Known | None = None) -> None:
        try:
            await self._deliver(row, known)
        except TenantMoved:
            log.info("outbox row %s: tenant %s is another worker's now; the row goes back", row.id, row.tenant_id)
            async with self.uow_factory() as uow:
                await uow.outbox.unclaim(self.worker_id, [row.id])
                await uow.commit()
        finally:
            self._leases.pop(row.id, None)
            self._zones.pop(row.id, None)

    async def _deliver(self, row: Queued, known: _Known | None) -> None:
        conversation_id = row.conversation_id
        if pending_user(row.conversation_id) is not None:
            opened = await self.chats.open(row)
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
            self.pacer.answered(row.tenant_id)
        now = self.clock()
        verdict = judge(outcome.result, row.attempts, now, self.config.retry, self.rng)
        if verdict.pause_tenant_until is not None:  # at once: requests cleared but not yet gone wait for it too
            self.pacer.pause(row.tenant_id, verdict.pause_tenant_until.timestamp())
        # a success's exact 2xx is not reported by the SDK: only codes actually seen are stored
        code = None if verdict.status is Status.SENT else outcome.result.status_code
        # Teams has answered: the outcome must be written down, or the row would end `unknown` when its lease ends.
        # If the database is briefly gone (a restart), keep the outcome in hand and retry within the lease.
        deadline = asyncio.get_running_loop().time() + self.config.lease.total_seconds() * 0.8
        while True:
            try:
                await self.outcomes.record(row, verdict, code, outcome, now)
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

    async def _attempt(self, row: Queued, target: Conversation) -> SendOutcome:
        payload = json.loads(row.payload)
        card, summary = payload.get("card", {}), payload.get("summary", "")
        if row.operation == "update" and row.target_activity_id:
            return await self.sender.attempt_update(target, row.target_activity_id, card, summary)
        if row.operation == "delete" and row.target_activity_id:
            return await self.sender.attempt_delete(target, row.target_activity_id)
        return await self.sender.attempt(target, card, summary)

    async def _start(self, row: Queued) -> bool:
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
                started = await self.outcomes.mark_leaving(row)
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

    async def _unstart(self, row: Queued, started: asyncio.Future[bool]) -> bool:
        """The row was marked as leaving, but its tenant was paused (a 429) before it left: the mark goes, and the
        row waits in hand for the pause to end, keeping its place. False when it was not this claim's after all."""
        if not await started:
            return False
        try:
            return await self.outcomes.unmark(row)
        except DATABASE_UNAVAILABLE as exc:  # it stays marked: a crash while it waits would leave it `unknown`
            log.warning("database unavailable (%s); outbox row %s waits marked as leaving", type(exc).__name__, row.id)
            return True

    async def _clearance(self, row: Queued, conversation_id: str, known: _Known | None) -> Conversation | None:
        """Wait until the conversation may take one more message, then for the tenant's turn; the conversation, or
        None when the row must not be sent now (the conversation is gone and the row cancelled; or see `_turn`).

        The first send into a conversation in a batch uses what the claim's transaction looked up; later ones (and
        any after a wait) look again, since this batch's own sends have changed the windows.
        """
        first = known.first_look(conversation_id) if known is not None else None
        target: Conversation | None
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
        leaving = Leaving(lambda: self._start(row), lambda started: self._unstart(row, started))
        return target if await self.pacer.turn(row.tenant_id, row.tenant_id, leaving=leaving) else None

    async def _conversation_check(self, row: Queued, conversation_id: str) -> tuple[Conversation | None, float]:
        """One transaction: the conversation, and the wait Teams' per-conversation windows ask for, counted over the
        sends every process recorded (OutboxRepository.conversation_wait)."""
        async with self.uow_factory() as uow:
            target = await uow.conversations.get(conversation_id)
            if target is None or target.removed_at is not None:
                await self.outcomes.finish(
                    uow, row, Status.CANCELLED, None, None, "conversation gone or bot removed", None
                )
                await uow.commit()
                return None, 0.0
            return target, await uow.outbox.conversation_wait(conversation_id, self.clock(), CONVERSATION_LIMITS)
