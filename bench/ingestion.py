"""Ingestion benchmark: usage events per second through `POST /api/usage/events` (10,000-event batches: validation,
dedupe, raw rows and every rollup) against bulk inserts of the same rows into the raw table alone.

The batches are bench/workloads.py's: each from 10,000 distinct people of a 200,000-person population in Zipf-sized
tenants, event names drawn by popularity, instants over 30 days. Three twin databases (same migrations) take one
batch each in turn, the first side rotating: the API; SQLAlchemy's executemany of the raw rows (the baseline of
earlier runs); and the fastest plain bulk insert the database offers (COPY on PostgreSQL, the sqlite3 module's
executemany on SQLite), the headline's baseline. On PostgreSQL the server's CPU is counted for each side.

Fails (exit 1) unless every batch was stored whole and every rollup adds up to the events sent: profiles' and
features' counts, the tenants' daily figures and the active-day bits. Run: `python -m bench.ingestion [--batches 10]
[--database both|postgresql|sqlite]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from bench import finish
from bench.server import PostgresServer
from bench.workloads import usage_batches
from bot.app import create_app
from bot.config import Settings
from storage.engine import create_engine
from storage.migrate import upgrade
from storage.models import TenantUsageDaily, UsageActivity, UsageEvent, UsageFeature, UsageProfile
from storage.repositories import driver_value
from tests.support.database import create_postgres_database, drop_postgres_database

BATCH = 10_000
TOKEN = "bench-token"
SIDES = ("api", "executemany", "bulk")
COLUMNS = ("tenant_id", "aad_object_id", "name", "occurred_at", "day", "received_at")


def raw_rows(events: list[dict[str, Any]], now: datetime) -> list[tuple[Any, ...]]:
    """The events as rows of usage_events, parsed before the clock starts (the raw sides do no checking)."""
    rows = []
    for e in events:
        at = datetime.fromisoformat(e["timestamp"])
        rows.append((e["tenant_id"], e["user_id"], e["name"], at, at.date(), now))
    return rows


async def side_by_side(database: str, urls: dict[str, str], batches: int, now: datetime) -> dict[str, Any]:
    """Each side's seconds and (on PostgreSQL) server CPU over all batches, one batch each in turn."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, dev_mode=True, database_url=urls["api"], ingest_tokens=[TOKEN], delivery_workers=0
    )
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    engine = create_engine(urls["executemany"])
    server = PostgresServer() if database == "postgresql" else None
    bulk_url = make_url(urls["bulk"])
    pg = (
        await asyncpg.connect(bulk_url.set(drivername="postgresql").render_as_string(hide_password=False))
        if server
        else None
    )
    plain = None if server else sqlite3.connect(str(bulk_url.database), isolation_level=None)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    seconds = dict.fromkeys(SIDES, 0.0)
    server_cpu = dict.fromkeys(SIDES, 0.0)
    stored = {"api": 0, "duplicates": 0}

    async def api(events: list[dict[str, Any]], _: list[tuple[Any, ...]]) -> None:
        body = json.dumps({"events": events})
        response = await client.post("/api/usage/events", data=body, headers=headers)
        result = await response.json()
        if response.status != 202:
            raise RuntimeError(f"the API answered {response.status}: {result}")
        stored["api"] += result["stored"]
        stored["duplicates"] += result.get("duplicates", 0)

    async def executemany(_: list[dict[str, Any]], rows: list[tuple[Any, ...]]) -> None:
        async with engine.begin() as connection:
            await connection.execute(insert(UsageEvent), [dict(zip(COLUMNS, row, strict=True)) for row in rows])

    async def bulk(_: list[dict[str, Any]], rows: list[tuple[Any, ...]]) -> None:
        if pg is not None:
            await pg.copy_records_to_table("usage_events", records=rows, columns=list(COLUMNS))
            return
        assert plain is not None
        marks = ", ".join("?" for _ in COLUMNS)
        plain.execute("BEGIN")
        plain.executemany(f"INSERT INTO usage_events ({', '.join(COLUMNS)}) VALUES ({marks})", rows)
        plain.execute("COMMIT")

    work: dict[str, Callable[[list[dict[str, Any]], list[tuple[Any, ...]]], Awaitable[None]]] = {
        "api": api,
        "executemany": executemany,
        "bulk": bulk,
    }
    try:
        for n, events in enumerate(usage_batches(batches, BATCH, now)):
            rows = raw_rows(events, now)
            # the plain SQLite side gets its values as the driver takes them: its baseline does no converting either
            text_rows = [tuple(driver_value(v, postgres=False) for v in row) for row in rows] if plain else rows
            for name in SIDES[n % 3 :] + SIDES[: n % 3]:
                cpu = server.cpu_seconds() if server else 0.0
                started = time.perf_counter()
                await work[name](events, text_rows if name == "bulk" else rows)
                seconds[name] += time.perf_counter() - started
                server_cpu[name] += server.cpu_seconds() - cpu if server else 0.0
        return {"seconds": seconds, "server_cpu": server_cpu, "stored": stored}
    finally:
        await client.close()
        await engine.dispose()
        if pg is not None:
            await pg.close()
        if plain is not None:
            plain.close()


def expected_rollups(batches: int, now: datetime) -> dict[str, int]:
    """What the rollups must add up to for the batches sent: events, and distinct active (tenant, person, day)s."""
    events = 0
    active: set[tuple[str, str, date]] = set()
    for batch in usage_batches(batches, BATCH, now):
        events += len(batch)
        active.update((e["tenant_id"], e["user_id"], datetime.fromisoformat(e["timestamp"]).date()) for e in batch)
    return {"events": events, "active_days": len(active)}


async def rollup_problems(url: str, expected: dict[str, int], table_rows: dict[str, int]) -> list[str]:
    """Where the API's database disagrees with the events sent."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:

            async def one(statement: Any) -> int:
                return int((await connection.execute(statement)).scalar_one() or 0)

            found = {
                "raw events": await one(select(func.count()).select_from(UsageEvent)),
                "profiles' events": await one(select(func.sum(UsageProfile.events))),
                "features' totals": await one(select(func.sum(UsageFeature.total))),
                "tenants' daily events": await one(select(func.sum(TenantUsageDaily.events))),
                "tenants' daily active people": await one(select(func.sum(TenantUsageDaily.active_users))),
                "active-day bits": sum(
                    (bits & (2**64 - 1)).bit_count()
                    for bits in (await connection.execute(select(UsageActivity.bits))).scalars()
                ),
            }
    finally:
        await engine.dispose()
    want = {
        "raw events": expected["events"],
        "profiles' events": expected["events"],
        "features' totals": expected["events"],
        "tenants' daily events": expected["events"],
        "tenants' daily active people": expected["active_days"],
        "active-day bits": expected["active_days"],
    }
    problems = [f"{what}: {found[what]:,}, expected {want[what]:,}" for what in want if found[what] != want[what]]
    problems += [
        f"{side} side's usage_events rows: {n:,}, expected {expected['events']:,}"
        for side, n in table_rows.items()
        if n != expected["events"]
    ]
    return problems


async def _count_raw(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(UsageEvent))).scalar_one())
    finally:
        await engine.dispose()


async def run(database: str, batches: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="nurture-bench-"))
    if database == "sqlite":
        urls = {side: f"sqlite+aiosqlite:///{work / side}.db" for side in SIDES}
    else:
        urls = {side: create_postgres_database("nurture_bench") for side in SIDES}
    now = datetime.now(UTC)
    try:
        for url in urls.values():
            upgrade(url)
        measured = await side_by_side(database, urls, batches, now)
        events = batches * BATCH
        rate = {side: events / measured["seconds"][side] for side in SIDES}
        expected = expected_rollups(batches, now)
        raw_rows_stored = {side: await _count_raw(urls[side]) for side in ("executemany", "bulk")}
        result: dict[str, Any] = {
            "database": database,
            "batches": batches,
            "events": events,
            "distinct_active_days": expected["active_days"],
            "events_per_second": {side: round(rate[side]) for side in SIDES},
            "api_over_bulk": round(rate["api"] / rate["bulk"], 3),
            "api_over_executemany": round(rate["api"] / rate["executemany"], 3),
            "stored_by_api": measured["stored"]["api"],
            "problems": await rollup_problems(urls["api"], expected, raw_rows_stored),
        }
        if database == "postgresql":
            result["server_cpu_ms_per_1000_events"] = {
                side: round(1_000_000 * measured["server_cpu"][side] / events, 1) for side in SIDES
            }
        if measured["stored"]["api"] != events:
            result["problems"].append(f"the API stored {measured['stored']['api']:,} of {events:,} events")
        return result
    finally:
        if database != "sqlite":
            for url in urls.values():
                drop_postgres_database(url)
        shutil.rmtree(work, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--database", choices=("both", "postgresql", "sqlite"), default="both")
    args = parser.parse_args()
    databases = ("postgresql", "sqlite") if args.database == "both" else (args.database,)
    rows = [await run(database, args.batches) for database in databases]
    print(
        f"{'database':>10} {'events':>7} {'API ev/s':>9} {'executemany':>11} {'bulk':>8} "
        f"{'API÷bulk':>9} {'API÷execmany':>12}"
    )
    for r in rows:
        rate = r["events_per_second"]
        print(
            f"{r['database']:>10} {r['events']:>7} {rate['api']:>9} {rate['executemany']:>11} {rate['bulk']:>8} "
            f"{r['api_over_bulk']:>9} {r['api_over_executemany']:>12}"
        )
        if "server_cpu_ms_per_1000_events" in r:
            print(f"{'':>10} PostgreSQL server CPU ms per 1,000 events: {r['server_cpu_ms_per_1000_events']}")
    finish("ingestion", rows, [f"{r['database']}: {p}" for r in rows for p in r["problems"]], batch_size=BATCH)


if __name__ == "__main__":
    asyncio.run(main())
