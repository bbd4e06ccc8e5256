"""Taking usage events in: from the HTTP API, from files (`nurture ingest`), and from the bot's own activity."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.engagement.usage import Rejection, parse_batch
from bot.security.tenants import TenantPolicy
from bot.usecases.ports import IngestUnitOfWork


@dataclass(frozen=True)
class IngestReport:
    accepted: int  # valid events (a duplicate is valid, and counted once)
    stored: int  # new events, now in the rollups
    duplicates: int  # valid events already known
    rejections: Sequence[Rejection]

    def as_json(self, max_reasons: int = 100) -> dict[str, Any]:
        listed = [{"index": r.index, "reason": r.reason} for r in self.rejections[:max_reasons]]
        body: dict[str, Any] = {
            "accepted": self.accepted,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": len(self.rejections),
            "rejections": listed,
        }
        if len(self.rejections) > max_reasons:
            body["rejections_truncated"] = True
        return body


@dataclass
class UsageIngest:
    uow_factory: Callable[[], IngestUnitOfWork]
    tenant_policy: TenantPolicy

    def _tenant_refusal(self, tenant_id: str) -> str | None:
        refusal = self.tenant_policy.refusal(tenant_id)
        return f"tenant_id {tenant_id}: {refusal}" if refusal else None

    async def ingest(self, raws: Sequence[Any], now: datetime) -> IngestReport:
        """Check every event, store the valid ones (and fold them into the rollups) in one transaction."""
        events, rejections = parse_batch(raws, now, self._tenant_refusal)
        stored = duplicates = 0
        if events:
            async with self.uow_factory() as uow:
                result = await uow.usage.record(events, now)
                await uow.commit()
            stored, duplicates = result.stored, result.duplicates
        return IngestReport(len(events), stored, duplicates, rejections)
