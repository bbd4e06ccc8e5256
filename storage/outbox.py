"""The outbox: queued proactive messages, claimed by workers with a lease, and the per-tenant rate buckets.

Claiming is one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`: on PostgreSQL the sub-select takes
`FOR UPDATE SKIP LOCKED`, so concurrent workers never claim the same row; SQLite has no row locks (SQLAlchemy drops
SKIP LOCKED there silently) but runs every transaction as BEGIN IMMEDIATE (storage.engine), which serializes claims.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Float,
    Integer,
    String,
    Table,
    TextClause,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.engagement.delivery import window_wait
from storage.models import OutboxMessage, TenantRate, User, UtcDateTime
from storage.sql import insert_for, insert_many, numbered_rows, on_postgres, upsert_sql


@dataclass(frozen=True)
class TenantHold:
    """A tenant a worker holds: since when it may send to it, and the end of the tenant's pause (epoch seconds)."""

    quiet_until: float
    paused_until: float


@dataclass(frozen=True)
class NewMessage:
    dedupe_key: str
    kind: str
    tenant_id: str
    user_id: int | None
    conversation_id: str
    card: dict[str, Any]
    summary: str
    survey_instance_id: str | None = None
    operation: str = "send"  # send | update | delete
    target_activity_id: str | None = None  # the card to update or delete
    quiet_hours: bool = False  # held while it is night or weekend where the recipient is, also when about to leave

    @classmethod
    def of_card(
        cls,
        dedupe_key: str,
        kind: str,
        tenant_id: str,
        user_id: int | None,
        conversation_id: str,
        card: dict[str, Any],
        **options: Any,
    ) -> NewMessage:
        """A card message, its notification text taken from the card's fallback text; `options` are the other fields
        (survey_instance_id, operation, target_activity_id, quiet_hours)."""
        summary = str(card.get("fallbackText", ""))[:200]
        return cls(dedupe_key[:200], kind, tenant_id, user_id, conversation_id, card, summary, **options)


# Hot-path statements, built once: building a statement and its cache key costs more CPU than running it.
_RATES = cast(Table, TenantRate.__table__)
_now, _until, _quiet = (bindparam(name, type_=Float()) for name in ("now_epoch", "held_until", "quiet"))
_limit, _worker = bindparam("limit", type_=Integer()), bindparam("worker", type_=String())


def _hold(greatest: Any) -> Any:
    """Take the tenant for `worker` (or keep it) unless another worker holds it; returns since when the worker may
    send, and the end of the tenant's pause. Taken over from a holder whose hold ran out (it died, or lost the
    database), sends wait until that holder's requests have left every window: `quiet` seconds after its hold ended."""
    rates = _RATES.c
    released_or_mine = or_(rates.holder.is_(None), rates.holder == _worker)
    quiet = case(
        (released_or_mine, rates.quiet_until_epoch),
        else_=greatest(rates.quiet_until_epoch, rates.held_until_epoch + _quiet),
    )
    return (
        update(_RATES)
        .where(rates.tenant_id == bindparam("tenant"), or_(released_or_mine, rates.held_until_epoch < _now))
        .values(holder=_worker, held_until_epoch=_until, quiet_until_epoch=quiet)
        .returning(rates.quiet_until_epoch, rates.paused_until_epoch)
    )


_HOLD_PG = _hold(func.greatest)
_HOLD_SQLITE = _hold(func.max)  # SQLite's max() with several arguments is the scalar greatest


def _release(greatest: Any) -> Any:
    rates = _RATES.c
    return (
        update(_RATES)
        .where(rates.tenant_id == bindparam("tenant"), rates.holder == _worker)
        .values(holder=None, held_until_epoch=0.0, quiet_until_epoch=greatest(rates.quiet_until_epoch, _quiet))
    )


_RELEASE_PG = _release(func.greatest)
_RELEASE_SQLITE = _release(func.max)
# a tenant another worker sends to: its rows wait for that worker (or for its hold to run out)
_HELD_ELSEWHERE = (
    select(_RATES.c.tenant_id)
    .where(_RATES.c.tenant_id == OutboxMessage.tenant_id, _RATES.c.holder != _worker, _RATES.c.held_until_epoch >= _now)
    .exists()
)
_SENT = cast(Table, OutboxMessage.__table__)
# a card queued; SQL written once for both databases (storage.sql.upsert_sql), so compiled once. All
# columns but the payload are NewMessage's fields of the same name
_ENQUEUE_COLUMNS = (
    "dedupe_key", "kind", "tenant_id", "user_id", "conversation_id", "survey_instance_id", "operation",
    "target_activity_id", "quiet_hours", "payload",
)  # fmt: skip
_NEW_ROW = ("'queued'", "0", ":now", ":now")  # status, attempts, next_attempt_at, created_at


@functools.lru_cache(maxsize=8)
def _enqueue(rows: int) -> TextClause:
    return upsert_sql(
        f"INSERT INTO outbox ({', '.join(_ENQUEUE_COLUMNS)}, status, attempts, next_attempt_at, created_at) "
        f"VALUES {numbered_rows(_ENQUEUE_COLUMNS, rows, *_NEW_ROW)} "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key",
        now=UtcDateTime(),
    )


_when, _lease_until = bindparam("now", type_=UtcDateTime()), bindparam("lease_until", type_=UtcDateTime())
_QUEUED_DUE = and_(OutboxMessage.status == "queued", OutboxMessage.next_attempt_at <= _when)
# a worker died (or lost the database) holding the row before its request left: it goes out normally
_LEASE_EXPIRED = and_(
    OutboxMessage.status == "sending", OutboxMessage.lease_until < _when, OutboxMessage.attempt_started_at.is_(None)
)
# … after its request may have left: Teams may have it, so it is not sent again (OutboxRepository.settle_abandoned)
_ABANDONED_IN_FLIGHT = and_(
    OutboxMessage.status == "sending", OutboxMessage.lease_until < _when, OutboxMessage.attempt_started_at.is_not(None)
)
ABANDONED_REASON = "the worker stopped while the request may have been on its way: delivery unknown, not resent"
_DUE_TENANTS = select(OutboxMessage.tenant_id).where(_QUEUED_DUE, ~_HELD_ELSEWHERE).distinct().limit(_limit)


def _claim_statement(due: Any, of_tenant: bool) -> Any:
    """Lease up to `limit` rows that are `due` (of one tenant): one UPDATE over a sub-select that, on PostgreSQL,
    skips rows another worker has locked (SQLAlchemy leaves FOR UPDATE out on SQLite, where BEGIN IMMEDIATE
    serializes claims)."""
    if of_tenant:
        due = and_(due, OutboxMessage.tenant_id == bindparam("tenant"))
    # one process at a time per conversation: rows whose conversation is being sent to elsewhere wait, so the
    # per-conversation windows see every earlier send (Teams counts per conversation, not per process)
    other = aliased(OutboxMessage)
    busy = (
        select(other.id)
        .where(
            other.conversation_id == OutboxMessage.conversation_id,
            other.status == "sending",
            other.lease_until >= _when,
            other.leased_by != _worker,
        )
        .exists()
    )
    pick = (
        select(OutboxMessage.id)
        .where(due, ~busy, ~_HELD_ELSEWHERE)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(_limit)
        .with_for_update(skip_locked=True)
    )
    return (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(pick.scalar_subquery()))
        .values(status="sending", lease_until=_lease_until, leased_by=_worker, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )


_CLAIM_EXPIRED = _claim_statement(_LEASE_EXPIRED, of_tenant=False)
_CLAIM_QUEUED = _claim_statement(_QUEUED_DUE, of_tenant=False)
_CLAIM_QUEUED_OF_TENANT = _claim_statement(_QUEUED_DUE, of_tenant=True)


# what every change that ends a claim clears: the lease, its holder, and the mark of a request leaving
_LET_GO: dict[str, Any] = {"lease_until": None, "leased_by": None, "attempt_started_at": None}


def _finish_statement(retry: bool, sent: bool) -> Any:
    """Record an outcome if `holder` still holds the lease of claim number `attempt`; Core, no ORM pass. Keyed by
    (retry later?, sent?)."""
    values: dict[str, Any] = {
        "status": bindparam("new_status"),
        **_LET_GO,
        "last_status_code": bindparam("code", type_=Integer()),
        "last_error": bindparam("error", type_=String()),
    }
    if retry:
        values["next_attempt_at"] = bindparam("retry_at", type_=UtcDateTime())
    if sent:
        values |= {"sent_at": bindparam("now", type_=UtcDateTime()), "activity_id": bindparam("activity", String())}
    return (
        update(_SENT)
        .where(
            _SENT.c.id == bindparam("message"),
            _SENT.c.leased_by == bindparam("holder"),
            _SENT.c.attempts == bindparam("attempt", type_=Integer()),
        )
        .values(values)
    )


_FINISH = {(retry, sent): _finish_statement(retry, sent) for retry in (False, True) for sent in (False, True)}
_RECENT_SENDS = select(_SENT.c.sent_at).where(
    _SENT.c.conversation_id == bindparam("conversation"), _SENT.c.sent_at > bindparam("since", type_=UtcDateTime())
)


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(self, message: NewMessage, now: datetime) -> int | None:
        """The new row's id; None when a message with the same dedupe key was queued before (never queued twice)."""
        [found] = await self.enqueue_many([message], now)
        return found

    async def enqueue_many(self, messages: Sequence[NewMessage], now: datetime) -> list[int | None]:
        """Each new row's id, in order; None where a message with the same dedupe key was queued before (or earlier in
        `messages`). Many rows a statement: a campaign run queues hundreds of thousands."""
        rows = [
            {c: getattr(m, c) for c in _ENQUEUE_COLUMNS[:-1]}
            | {"payload": json.dumps({"card": m.card, "summary": m.summary}, ensure_ascii=False)}
            for m in messages
        ]
        found = {r.dedupe_key: r.id for r in await insert_many(self.session, _enqueue, rows, now=now)}
        # RETURNING gives no order: each id goes back to its message by the dedupe key (the first, if one came twice)
        return [found.pop(m.dedupe_key, None) for m in messages]

    async def exists(self, dedupe_key: str) -> bool:
        """Whether a message with this dedupe key was queued before (so building its card again can be skipped)."""
        stmt = select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key[:200])
        return (await self.session.execute(stmt)).first() is not None

    async def claim(
        self, worker: str, now: datetime, lease: timedelta, limit: int, only: Collection[str] | None = None
    ) -> Sequence[OutboxMessage]:
        """Lease up to `limit` due rows, shared fairly between the tenants that have some (of the tenants `only`, when
        given), leaving out tenants another worker sends to (OutboxRepository.hold_tenants).

        Rows whose worker died mid-send (lease expired) come first. Then each tenant is sent to at its own rate: a
        batch filled with one tenant's campaign would make every other tenant's messages wait behind that tenant's
        schedule. So the batch takes an equal share from each tenant with due rows (tenants in random order), then
        fills up with whatever is left. Queued and expired rows are looked up separately: each lookup then follows
        an index (tenant, status, due time) instead of scanning the whole queue (an OR of the two scanned it).
        """
        values = {"now": now, "now_epoch": now.timestamp(), "worker": worker, "lease_until": now + lease}
        if only is not None:
            tenants, claimed = list(only), []
        else:
            claimed = list((await self.session.scalars(_CLAIM_EXPIRED, values | {"limit": limit})).all())
            tenants = list((await self.session.execute(_DUE_TENANTS, values | {"limit": limit})).scalars())
        random.shuffle(tenants)
        if not tenants or len(claimed) >= limit:
            return claimed
        share = max(1, -(-(limit - len(claimed)) // len(tenants)))
        # a share from each tenant; with `only`, a second pass fills up from the same tenants
        for most in (share, limit) if only is not None else (share,):
            for tenant_id in tenants:
                if len(claimed) >= limit:
                    return claimed
                values |= {"tenant": tenant_id, "limit": min(most, limit - len(claimed))}
                claimed += (await self.session.scalars(_CLAIM_QUEUED_OF_TENANT, values)).all()
        if len(claimed) < limit and only is None:
            values["limit"] = limit - len(claimed)
            claimed += (await self.session.scalars(_CLAIM_QUEUED, values)).all()
        return claimed

    async def begin(
        self, worker: str, claims: Collection[tuple[int, int]], now: datetime, lease: timedelta
    ) -> set[int]:
        """Mark rows as about to leave, each (id, claim number) still leased by `worker`; their leases restart now, so
        the outcome has a whole lease to be written. Returns the ids marked: a row missing was claimed again since
        (its lease had run out) and must not be sent by this claim."""
        return await self._extend(worker, claims, now + lease, attempt_started_at=now)

    async def renew(self, worker: str, claims: Collection[tuple[int, int]], lease_until: datetime) -> set[int]:
        """Extend the leases of rows `worker` holds and has not sent yet (each (id, claim number)); the ids renewed."""
        return await self._extend(worker, claims, lease_until)

    async def _extend(
        self, worker: str, claims: Collection[tuple[int, int]], lease_until: datetime, **values: Any
    ) -> set[int]:
        if not claims:
            return set()
        stmt = (
            update(OutboxMessage)
            .where(
                tuple_(OutboxMessage.id, OutboxMessage.attempts).in_(list(claims)),
                OutboxMessage.leased_by == worker,
                OutboxMessage.status == "sending",
            )
            .values(lease_until=lease_until, **values)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        return set((await self.session.scalars(stmt)).all())

    async def unmark(self, worker: str, message_id: int, attempt: int) -> bool:
        """Take back `begin`'s mark of a row that did not leave after all (its tenant was paused meanwhile); False
        when the row is no longer this claim's."""
        result = await self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.leased_by == worker,
                OutboxMessage.attempts == attempt,
                OutboxMessage.status == "sending",
            )
            .values(attempt_started_at=None)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def give_back(self, worker: str, message_id: int, attempt: int, due: datetime) -> bool:
        """Return a claimed row to the queue, due at `due`, as if this claim had not happened (nothing was sent: it is
        night or a weekend where its recipient is)."""
        result = await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.leased_by == worker, OutboxMessage.attempts == attempt)
            .values(
                status="queued",
                next_attempt_at=due,
                **_LET_GO,
                attempts=OutboxMessage.attempts - 1,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def settle_abandoned(self, now: datetime, *, resend: bool = False) -> list[tuple[int, str | None]]:
        """Rows a worker left in `sending` after their request may have left (it died, or lost the database for a
        whole lease): new cards become `unknown` — Teams may have them — unless `resend` (NURTURE_RESEND_UNKNOWN);
        updates and deletions, which Teams applies once however often they arrive, are queued again. Returns the
        (id, survey instance) of the rows made `unknown`."""
        settled = "queued" if resend else case((OutboxMessage.operation == "send", "unknown"), else_="queued")
        stmt = (
            update(OutboxMessage)
            .where(_ABANDONED_IN_FLIGHT)
            .values(
                status=settled,
                next_attempt_at=_when,
                **_LET_GO,
                last_status_code=None,
                last_error=ABANDONED_REASON,
            )
            .returning(OutboxMessage.id, OutboxMessage.survey_instance_id, OutboxMessage.status)
            .execution_options(synchronize_session=False)
        )
        rows = (await self.session.execute(stmt, {"now": now})).tuples()
        return [(row_id, survey) for row_id, survey, status in rows if status == "unknown"]

    async def unclaim(self, worker: str, message_ids: Collection[int]) -> None:
        """Give claimed rows back untouched (their tenant turned out to be another worker's): not sent, not started."""
        if not message_ids:
            return
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(message_ids)), OutboxMessage.leased_by == worker)
            .values(
                status="queued",
                **_LET_GO,
                attempts=OutboxMessage.attempts - 1,
            )
            .execution_options(synchronize_session=False)
        )

    async def finish(
        self,
        message_id: int,
        worker: str,
        *,
        status: str,
        now: datetime,
        retry_at: datetime | None,
        status_code: int | None,
        error: str | None,
        activity_id: str | None,
        attempt: int,
    ) -> bool:
        """Record an attempt's outcome, only if this worker still holds the lease of claim number `attempt`."""
        sent = status == "sent"
        values = {
            "message": message_id,
            "holder": worker,
            "attempt": attempt,
            "new_status": status,
            "code": status_code,
            "error": (error or None) and error[:300],
        }
        if retry_at is not None:
            values["retry_at"] = retry_at
        if sent:
            values |= {"now": now, "activity": activity_id}
        result = await self.session.execute(_FINISH[(retry_at is not None, sent)], values)
        return bool(getattr(result, "rowcount", 0))

    async def conversation_wait(
        self, conversation_id: str, now: datetime, limits: Sequence[tuple[int, float]]
    ) -> float:
        """Seconds until one more send into the conversation fits every (count, seconds) window; 0 when it fits now.

        Counts the sends recorded by every worker process (sent_at), so a conversation handed from one process to
        another keeps within Teams' per-conversation limits.
        """
        longest = max(seconds for _, seconds in limits)
        found = await self.session.execute(
            _RECENT_SENDS, {"conversation": conversation_id, "since": now - timedelta(seconds=longest)}
        )
        return window_wait([t for t in found.scalars() if t is not None], now, limits)

    async def recent_sends(self, conversation_ids: Collection[str], since: datetime) -> dict[str, list[datetime]]:
        """The recorded sends into each of these conversations since `since` (a claimed batch's windows at once)."""
        stmt = select(OutboxMessage.conversation_id, OutboxMessage.sent_at).where(
            OutboxMessage.conversation_id.in_(conversation_ids), OutboxMessage.sent_at > since
        )
        found: dict[str, list[datetime]] = {c: [] for c in conversation_ids}
        for conversation_id, sent_at in (await self.session.execute(stmt)).tuples():
            if sent_at is not None:
                found[conversation_id].append(sent_at)
        return found

    async def sends_since(self, user_ids: Sequence[int], since: datetime) -> dict[int, list[datetime]]:
        """Proactive messages of every kind to these people (queued or delivered) since `since`: the attention
        budget, per person."""
        stmt = select(OutboxMessage.user_id, OutboxMessage.created_at).where(
            OutboxMessage.user_id.in_(user_ids),
            OutboxMessage.created_at > since,
            OutboxMessage.status.in_(("queued", "sending", "sent", "unknown")),
        )
        found: dict[int, list[datetime]] = {}
        for user_id, created_at in (await self.session.execute(stmt)).tuples():
            if user_id is not None:
                found.setdefault(user_id, []).append(created_at)
        return found

    async def sent_cards(self, kind: str, tenant_id: str | None = None) -> Sequence[OutboxMessage]:
        """Cards of one kind that Teams accepted (they have an activity id): what a recall takes back."""
        stmt = select(OutboxMessage).where(
            OutboxMessage.kind == kind,
            OutboxMessage.operation == "send",
            OutboxMessage.status == "sent",
            OutboxMessage.activity_id.is_not(None),
        )
        if tenant_id:
            stmt = stmt.where(OutboxMessage.tenant_id == tenant_id)
        return (await self.session.execute(stmt.order_by(OutboxMessage.id))).scalars().all()

    async def cancel_queued(self, kind: str, reason: str, tenant_id: str | None = None) -> int:
        stmt = update(OutboxMessage).where(
            OutboxMessage.kind == kind, OutboxMessage.status == "queued", OutboxMessage.operation == "send"
        )
        if tenant_id:
            stmt = stmt.where(OutboxMessage.tenant_id == tenant_id)
        result = await self.session.execute(stmt.values(status="cancelled", last_error=reason[:300]))
        return int(getattr(result, "rowcount", 0) or 0)

    async def pending(self) -> int:
        stmt = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status.in_(("queued", "sending")))
        return int((await self.session.execute(stmt)).scalar_one())

    async def all(self) -> Sequence[tuple[OutboxMessage, str | None]]:
        stmt = select(OutboxMessage, User.aad_object_id).outerjoin(User, User.id == OutboxMessage.user_id)
        return [(row[0], row[1]) for row in (await self.session.execute(stmt.order_by(OutboxMessage.id))).all()]

    async def retarget(self, pending_chat: str, conversation_id: str) -> int:
        """Point the messages that waited for a person's chat at the chat now opened."""
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.conversation_id == pending_chat, OutboxMessage.status.in_(("queued", "sending")))
            .values(conversation_id=conversation_id)
        )
        return int(getattr(await self.session.execute(stmt), "rowcount", 0) or 0)

    async def mark_unreachable(self, user_id: int, reason: str, now: datetime) -> None:
        await self.session.execute(
            update(User).where(User.id == user_id).values(unreachable_at=now, unreachable_reason=reason[:128])
        )

    # -- per-tenant send schedule shared by every worker ---------------------------------------------------------

    async def hold_tenants(
        self, worker: str, tenants: Collection[str], now_epoch: float, hold_seconds: float, quiet_seconds: float
    ) -> dict[str, TenantHold]:
        """Take (or keep) each tenant for `worker` for `hold_seconds`: the tenants it now holds, each with since when it
        may send and the end of the tenant's pause. A tenant another worker holds is left out.

        One worker at a time sends to a tenant, so the tenant's rate is kept by that worker's own count of what it sent
        (bot.engagement.delivery.SendLog), whatever the number of processes. A holder must stop sending before its
        hold ends; a new holder after an expired one waits `quiet_seconds` past the end of the old hold.
        """
        hold = _HOLD_PG if on_postgres(self.session) else _HOLD_SQLITE
        held: dict[str, TenantHold] = {}
        for tenant in sorted(tenants):  # in one order: two workers taking two tenants cannot deadlock
            values = {
                "tenant": tenant,
                "worker": worker,
                "now_epoch": now_epoch,
                "held_until": now_epoch + hold_seconds,
                "quiet": quiet_seconds,
            }
            row = (await self.session.execute(hold, values)).first()
            if row is not None:
                held[tenant] = TenantHold(float(row[0]), float(row[1]))
                continue
            created = await self.session.execute(
                insert_for(self.session, TenantRate)
                .values(
                    tenant_id=tenant,
                    quiet_until_epoch=0.0,
                    paused_until_epoch=0.0,
                    throttled=0,
                    holder=worker,
                    held_until_epoch=now_epoch + hold_seconds,
                )
                .on_conflict_do_nothing(index_elements=[TenantRate.tenant_id])
                .returning(TenantRate.tenant_id)
            )
            if created.scalar_one_or_none() is not None:
                held[tenant] = TenantHold(0.0, 0.0)
        return held

    async def release_tenants(self, worker: str, quiet_until: dict[str, float]) -> None:
        """Let other workers send to these tenants, not before each one's `quiet_until` (this worker's last requests
        have left every window by then)."""
        release = _RELEASE_PG if on_postgres(self.session) else _RELEASE_SQLITE
        for tenant in sorted(quiet_until):
            await self.session.execute(release, {"tenant": tenant, "worker": worker, "quiet": quiet_until[tenant]})

    async def pauses(self, buckets: Collection[str]) -> dict[str, float]:
        """The end of each bucket's pause (epoch seconds), for the buckets that have a row."""
        if not buckets:
            return {}
        stmt = select(TenantRate.tenant_id, TenantRate.paused_until_epoch).where(TenantRate.tenant_id.in_(buckets))
        return {bucket: float(until) for bucket, until in (await self.session.execute(stmt)).all()}

    async def pause_tenant(self, tenant_id: str, until_epoch: float, throttled: int = 1) -> None:
        """A 429 for one conversation slows the whole tenant, for every worker; `throttled` 429s are counted."""
        await self.session.execute(
            insert_for(self.session, TenantRate)
            .values(tenant_id=tenant_id, quiet_until_epoch=0.0, paused_until_epoch=0.0, throttled=0)
            .on_conflict_do_nothing(index_elements=[TenantRate.tenant_id])
        )
        await self.session.execute(
            update(TenantRate)
            .where(TenantRate.tenant_id == tenant_id)
            .values(
                paused_until_epoch=case(
                    (TenantRate.paused_until_epoch > until_epoch, TenantRate.paused_until_epoch),
                    else_=literal(until_epoch),
                ),
                throttled=TenantRate.throttled + throttled,
            )
        )

    async def throttled(self) -> int:
        return int((await self.session.execute(select(func.coalesce(func.sum(TenantRate.throttled), 0)))).scalar_one())
