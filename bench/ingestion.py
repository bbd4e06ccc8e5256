"""Ingestion benchmark: usage events per second through `POST /api/usage/events` (10,000-event batches: validation,
dedupe, raw rows and every rollup) versus a raw bulk insert of the same rows into the same table (executemany).

The two sides write to twin databases (same migrations), one batch each in turn, so both tables grow alike and share
the machine's ups and downs. Prints both rates and their ratio side by side, on PostgreSQL and SQLite; writes
bench/results/ingestion.json. Run: `python -m bench.ingestion [--batches 10]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert

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


def raw_rows(batch: int, now: datetime) -> list[dict[str, Any]]:
    """The same events as rows of usage_events, parsed before the clock starts (the raw side does no checking)."""
    return [
        {
            "tenant_id": e["tenant_id"],
            "aad_object_id": e["user_id"],
            "name": e["name"],
            "occurred_at": datetime.fromisoformat(e["timestamp"]),
            "day": datetime.fromisoformat(e["timestamp"]).date(),
            "received_at": now,
        }
        for e in events(batch, now)
    ]


async def side_by_side(api_url: str, raw_url: str, batches: int, now: datetime) -> tuple[float, float]:
    """Events/s through the API into one database and rows/s of the raw insert into a twin database, batch by batch
    in turns (the first side alternates), so both tables grow alike and share the machine's ups and downs."""
    settings = Settings(_env_file=None, dev_mode=True, database_url=api_url, ingest_tokens=[TOKEN], delivery_workers=0)  # type: ignore[call-arg]
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    engine = create_engine(raw_url)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    spent = {"api": 0.0, "raw": 0.0}

    async def api(batch: int) -> None:
        body = json.dumps({"events": events(batch, now)})
        started = time.perf_counter()
        response = await client.post("/api/usage/events", data=body, headers=headers)
        result = await response.json()
        spent["api"] += time.perf_counter() - started
        assert response.status == 202 and result["stored"] == BATCH, result

    async def raw(batch: int) -> None:
        rows = raw_rows(batch, now)
        started = time.perf_counter()
        async with engine.begin() as connection:
            await connection.execute(insert(UsageEvent), rows)
        spent["raw"] += time.perf_counter() - started

    try:
        for batch in range(batches):
            for side in (api, raw) if batch % 2 == 0 else (raw, api):
                await side(batch)
        return batches * BATCH / spent["api"], batches * BATCH / spent["raw"]
    finally:
        await client.close()
        await engine.dispose()


async def run(database: str, batches: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="nurture-bench-"))
    if database == "sqlite":
        urls = [f"sqlite+aiosqlite:///{work / name}" for name in ("api.db", "raw.db")]
    else:
        urls = [create_postgres_database("nurture_bench") for _ in range(2)]
    try:
        for url in urls:
            upgrade(url)
        api, raw = await side_by_side(urls[0], urls[1], batches, datetime.now(UTC))
        return {
            "database": database,
            "events": batches * BATCH,
            "api_events_per_second": round(api),
            "raw_insert_rows_per_second": round(raw),
            "ratio": round(api / raw, 3),
        }
    finally:
        if database != "sqlite":
            for url in urls:
                drop_postgres_database(url)
        shutil.rmtree(work, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
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
