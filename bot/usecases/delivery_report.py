"""What the outbox holds: for `nurture deliveries` and its CSV export."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.usecases.ports import DeliveryReportUnitOfWork

CSV_COLUMNS = (
    "id",
    "kind",
    "tenant",
    "user",
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "created_at",
    "sent_at",
    "activity_id",
)


@dataclass(frozen=True)
class DeliveryReport:
    rows: list[dict[str, Any]]
    throttled: int
    now: datetime

    def summary(self) -> dict[str, Any]:
        queued = [r["created_at"] for r in self.rows if r["status"] in ("queued", "sending")]
        oldest = min(queued) if queued else None
        errors = [r for r in self.rows if r["last_error"]]
        return {
            "total": len(self.rows),
            "by_status": dict(Counter(r["status"] for r in self.rows)),
            "by_kind": {
                kind: dict(Counter(r["status"] for r in self.rows if r["kind"] == kind))
                for kind in sorted({r["kind"] for r in self.rows})
            },
            "status_codes": {
                str(k): v
                for k, v in Counter(
                    r["last_status_code"] for r in self.rows if r["last_status_code"] is not None
                ).items()
            },
            "throttled": self.throttled,
            "oldest_queued_seconds": round((self.now - oldest).total_seconds()) if oldest else None,
            "recent_errors": [{"id": r["id"], "status": r["status"], "error": r["last_error"]} for r in errors[-10:]],
        }


async def delivery_report(uow: DeliveryReportUnitOfWork, now: datetime) -> DeliveryReport:
    rows = [
        {
            "id": message.id,
            "kind": message.kind,
            "tenant": message.tenant_id,
            "user": aad,
            "status": message.status,
            "attempts": message.attempts,
            "last_status_code": message.last_status_code,
            "last_error": message.last_error,
            "created_at": message.created_at,
            "sent_at": message.sent_at,
            "activity_id": message.activity_id,
        }
        for message, aad in await uow.outbox.all()
    ]
    return DeliveryReport(rows, await uow.outbox.throttled(), now)


def write_csv(report: DeliveryReport, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in report.rows:
            writer.writerow({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()})
