"""`nurture campaigns report`: per campaign, how many people were messaged or held out, and who came back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.engagement.uplift import Group, Uplift, uplift
from bot.usecases.ports import CampaignReportUnitOfWork


@dataclass(frozen=True)
class CampaignUplift:
    campaign_id: str
    kind: str
    treated_total: int  # every touch, including windows still open
    holdout_total: int
    result: Uplift

    def as_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "campaign": self.campaign_id,
            "kind": self.kind,
            "treated": {"touched": self.treated_total, "observed": r.treated.people, "returned": r.treated.returned},
            "holdout": {"touched": self.holdout_total, "observed": r.holdout.people, "returned": r.holdout.returned},
            "treated_rate": r.treated.rate,
            "holdout_rate": r.holdout.rate,
            "uplift_points": r.difference,
            "interval_95": list(r.interval) if r.interval else None,
            "verdict": r.verdict,
        }


async def campaign_report(
    uow_factory: Callable[[], CampaignReportUnitOfWork], now: datetime, window_days: int = 14, min_group: int = 10
) -> list[CampaignUplift]:
    """A touch counts once its window has ended; "returned" = active on any day in the `window_days` after it."""
    window = timedelta(days=window_days)
    async with uow_factory() as uow:
        await uow.reads_only()  # usage and answers stored meanwhile need not wait for a report
        touches = await uow.campaigns.all_touches()
        tenants = {t.tenant_id for t in touches}
        earliest = min((t.decided_at for t in touches), default=now)
        active = {tenant: await uow.usage.active_days(tenant, earliest.date()) for tenant in tenants}
    counts: dict[tuple[str, str], dict[bool, list[int]]] = defaultdict(lambda: {True: [0, 0, 0], False: [0, 0, 0]})
    for t in touches:
        cell = counts[(t.campaign_id, t.kind)][t.holdout]
        cell[0] += 1
        if t.decided_at + window > now:
            continue
        cell[1] += 1
        start = t.decided_at.date()
        days = active[t.tenant_id].get(t.aad_object_id, set())
        if any(start < d <= start + window for d in days):
            cell[2] += 1
    report = []
    for (campaign_id, kind), cells in sorted(counts.items()):
        treated, held = cells[False], cells[True]
        result = uplift(Group(treated[1], treated[2]), Group(held[1], held[2]), min_group)
        report.append(CampaignUplift(campaign_id, kind, treated[0], held[0], result))
    return report
