"""Campaign touches, "stop these" opt-outs, and what targeting needs about a tenant's people, in a few queries."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, TextClause, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    CampaignOptOut,
    CampaignTouch,
    ConversationReference,
    OutboxMessage,
    PendingAlert,
    UtcDateTime,
)
from storage.sql import insert_for, insert_many, numbered_rows, upsert_sql

LIVE_SEND_STATUSES = ("queued", "sending", "sent", "unknown")  # what counts against the attention budget
_CHUNK = 1000  # ids per IN list
_TOUCH_COLUMNS = ("campaign_id", "kind", "step", "tenant_id", "aad_object_id", "holdout", "reason")


@functools.lru_cache(maxsize=8)
def _add_touches(rows: int) -> TextClause:
    """`rows` touches in one INSERT, SQL written once for both databases (storage.sql.upsert_sql)."""
    return upsert_sql(
        f"INSERT INTO campaign_touches ({', '.join(_TOUCH_COLUMNS)}, decided_at) "
        f"VALUES {numbered_rows(_TOUCH_COLUMNS, rows, ':now')} "
        "ON CONFLICT (campaign_id, tenant_id, aad_object_id, step) DO NOTHING "
        "RETURNING id, campaign_id, tenant_id, aad_object_id, step",
        now=UtcDateTime(),
        **{f"holdout{i}": Boolean() for i in range(rows)},
    )


@dataclass(frozen=True)
class NewTouch:
    campaign_id: str
    kind: str
    step: str
    tenant_id: str
    aad_object_id: str
    holdout: bool
    reason: str


class CampaignRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- what targeting reads ----------------------------------------------------------------------------------

    async def chats(self, user_ids: Sequence[int]) -> dict[int, str]:
        """Each person's open personal chat with the bot (the one updated last), for those who have one."""
        found: dict[int, str] = {}
        ids = sorted(set(user_ids))
        for start in range(0, len(ids), _CHUNK):
            c = ConversationReference
            stmt = (
                select(c.user_id, c.conversation_id)
                .where(c.user_id.in_(ids[start : start + _CHUNK]), c.scope == "personal", c.removed_at.is_(None))
                .order_by(c.updated_at)
            )
            for user_id, conversation_id in (await self.session.execute(stmt)).all():
                found[user_id] = conversation_id  # later rows (updated last) win
        return found

    async def renewal_alert_keys(self) -> set[str]:
        stmt = select(PendingAlert.cause_key).where(PendingAlert.kind == "renewal", PendingAlert.cause_key.is_not(None))
        return {key for key in (await self.session.execute(stmt)).scalars() if key}

    # -- writing -------------------------------------------------------------------------------------------

    async def add_touches(self, touches: Sequence[NewTouch], now: datetime) -> list[int | None]:
        """Each touch's id, in order; None where the same step was recorded already (by a concurrent run, or earlier
        in `touches`)."""
        rows = [{c: getattr(t, c) for c in _TOUCH_COLUMNS} | {"reason": t.reason[:300]} for t in touches]
        found = {
            (r.campaign_id, r.tenant_id, r.aad_object_id, r.step): r.id
            for r in await insert_many(self.session, _add_touches, rows, now=now)
        }
        # RETURNING gives no order: each id goes back to its touch by the step's key (the first, if one came twice)
        return [found.pop((t.campaign_id, t.tenant_id, t.aad_object_id, t.step), None) for t in touches]

    async def link_outbox(self, links: Sequence[tuple[int, int]]) -> None:
        """Each (touch, outbox row) pair: the card queued for the touch."""
        if links:
            await self.session.execute(
                update(CampaignTouch), [{"id": touch_id, "outbox_id": outbox_id} for touch_id, outbox_id in links]
            )

    async def touch(self, touch_id: int) -> CampaignTouch | None:
        return await self.session.get(CampaignTouch, touch_id)

    async def all_touches(self) -> Sequence[CampaignTouch]:
        return (await self.session.execute(select(CampaignTouch).order_by(CampaignTouch.id))).scalars().all()

    async def stop(self, user_id: int, kind: str, now: datetime) -> int:
        """Opt the person out of one kind and cancel that kind's messages still waiting; returns rows cancelled."""
        await self.session.execute(
            insert_for(self.session, CampaignOptOut)
            .values(user_id=user_id, kind=kind, created_at=now)
            .on_conflict_do_nothing(index_elements=["user_id", "kind"])
        )
        result = await self.session.execute(
            update(OutboxMessage)
            .where(
                and_(
                    OutboxMessage.user_id == user_id,
                    OutboxMessage.kind == kind,
                    OutboxMessage.status == "queued",
                    OutboxMessage.operation == "send",  # a queued recall still goes out
                )
            )
            .values(status="cancelled", last_error="the person asked to stop these")
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def resume(self, user_id: int, kind: str) -> None:
        await self.session.execute(
            delete(CampaignOptOut).where(CampaignOptOut.user_id == user_id, CampaignOptOut.kind == kind)
        )

    async def add_renewal_alert(self, tenant_id: str, cause_key: str, detail: str, now: datetime) -> bool:
        stmt = (
            insert_for(self.session, PendingAlert)
            .values(
                kind="renewal",
                tenant_id=tenant_id,
                cause_key=cause_key,
                detail=detail[:300],
                status="pending",
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["cause_key"])
            .returning(PendingAlert.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None
