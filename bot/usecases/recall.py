"""Taking messages back: cancel what is still queued and delete from Teams the cards already delivered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.engagement.kinds import BY_NAME
from bot.usecases.ports import RecallUnitOfWork
from storage.outbox import NewMessage

# what the outbox's kind column can hold: NPS asks, each campaign kind's cards, CSM alerts and digests
MESSAGE_KINDS = ("nps", *BY_NAME, "alert", "digest")


@dataclass(frozen=True)
class RecallReport:
    cancelled: int  # still queued: never sent
    recalls_queued: int  # delivered: a delete goes to Teams through the outbox (same limits and retries)


async def recall(
    uow_factory: Callable[[], RecallUnitOfWork], kind: str, now: datetime, *, tenant_id: str | None = None
) -> RecallReport:
    if kind not in MESSAGE_KINDS:
        raise ValueError(f"no messages are of kind {kind!r}: one of {', '.join(MESSAGE_KINDS)}")
    async with uow_factory() as uow:
        cancelled = await uow.outbox.cancel_queued(kind, "recalled by an operator", tenant_id)
        queued = 0
        for row in await uow.outbox.sent_cards(kind, tenant_id):
            added = await uow.outbox.enqueue(
                NewMessage(
                    dedupe_key=f"recall:{row.id}",
                    kind=row.kind,
                    tenant_id=row.tenant_id,
                    user_id=row.user_id,
                    conversation_id=row.conversation_id,
                    card={},
                    summary="",
                    operation="delete",
                    target_activity_id=row.activity_id,
                ),
                now,
            )
            queued += added is not None
        await uow.commit()
    return RecallReport(cancelled, queued)
