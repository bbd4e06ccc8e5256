"""Ingestion benchmark: usage events per second through `POST /api/usage/events` (10,000-event batches: validation,
dedupe, raw rows and every rollup) versus a raw bulk insert of the same rows into the same table (executemany).

Prints both rates and their ratio side by side, on PostgreSQL and SQLite; writes bench/results/ingestion.json.
Run: `python -m bench.ingestion [--batches 5]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, text

from bot.app import create_app
from bot.config import Settings
from storage.engine import create_engine
from storage.migrate import upgrade
from storage.models import UsageEvent
from tests.support.database import create_postgres_database, drop_postgres_database

RESULTS = Path(__file__).parent / "results"
BATCH = 10_000
TOKEN = "bench-token"


def events(batch: int, now: datetime) -> list[dict[str, Any]]:
    """10,000 distinct events: 2,000 people in 5 tenants, 5 event names, spread over the last 30 days."""
    rows = []
    for i in range(BATCH):
        n = batch * BATCH + i
        at = now - timedelta(days=n % 30, seconds=n)
        rows.append(
            {
                "tenant_id": f"{n % 5:08d}-0000-0000-0000-000000000000",
                "user_id": f"person-{n % 2000:05d}",
                "name": ("report_created", "dashboard_shared", "app_opened", "export", "alert_configured")[n % 5],
                "timestamp": at.isoformat(),
            }
        )
    return rows


async def through_api(url: str, batches: int, now: datetime) -> float:
    settings = Settings(_env_file=None, dev_mode=True, database_url=url, ingest_tokens=[TOKEN], delivery_workers=0)  # type: ignore[call-arg]
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    payloads = [json.dumps({"events": events(b, now)}) for b in range(batches)]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    try:
        started = time.perf_counter()
        for body in payloads:
            response = await client.post("/api/usage/events", data=body, headers=headers)
            result = await response.json()
            assert response.status == 202 and result["stored"] == BATCH, result
        return batches * BATCH / (time.perf_counter() - started)
    finally:
        await client.close()


async def raw_insert(url: str, batches: int, now: datetime) -> float:
    engine = create_engine(url)
    rows = [
        [
            {
                "tenant_id": e["tenant_id"],
                "aad_object_id": e["user_id"],
                "name": e["name"],
                "occurred_at": datetime.fromisoformat(e["timestamp"]),
                "day": datetime.fromisoformat(e["timestamp"]).date(),
                "received_at": now,
            }
            for e in events(b, now)
        ]
        for b in range(batches)
    ]
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM usage_events"))
        started = time.perf_counter()
        for batch in rows:
            async with engine.begin() as connection:
                await connection.execute(insert(UsageEvent), batch)
        return batches * BATCH / (time.perf_counter() - started)
    finally:
        await engine.dispose()


async def run(database: str, batches: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="nurture-bench-"))
    url = f"sqlite+aiosqlite:///{work / 'b.db'}" if database == "sqlite" else create_postgres_database("nurture_bench")
    try:
        upgrade(url)
        now = datetime.now(UTC)
        api = await through_api(url, batches, now)
        raw = await raw_insert(url, batches, now)
        return {
            "database": database,
            "events": batches * BATCH,
            "api_events_per_second": round(api),
            "raw_insert_rows_per_second": round(raw),
            "ratio": round(api / raw, 3),
        }
    finally:
        if database != "sqlite":
            drop_postgres_database(url)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    rows = [await run(database, args.batches) for database in ("postgresql", "sqlite")]
    print(f"{'database':>10} {'events':>7} {'API ev/s':>9} {'raw rows/s':>11} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['database']:>10} {r['events']:>7} {r['api_events_per_second']:>9} "
            f"{r['raw_insert_rows_per_second']:>11} {r['ratio']:>6}"
        )
    RESULTS.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    (RESULTS / "ingestion.json").write_text(json.dumps({"machine": machine, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
