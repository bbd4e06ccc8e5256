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
import contextlib
import json
import random
import resource
import shutil
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from bench import begin, finish, is_baseline
from bench.server import PostgresServer
from bench.workloads import SEED, ZONES, event_name, usage_batches
from bot.app import create_app
from bot.config import Settings
from bot.engagement.usage import EPOCH, WORD_DAYS
from storage.engine import create_engine
from storage.migrate import upgrade
from storage.models import (
    RECENT_COLUMNS,
    RECENT_WORDS,
    TenantUsageDaily,
    UsageActivity,
    UsageEvent,
    UsageFeature,
    UsageProfile,
)
from storage.sql import driver_value
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
    sent_to_api: list[dict[str, Any]] = []
    watch = server.watch() if server else None
    try:
        with watch if watch else contextlib.nullcontext():
            for n, events in enumerate(usage_batches(batches, BATCH, now)):
                sent_to_api += events
                rows = raw_rows(events, now)
                # the plain SQLite side gets its values as the driver takes them: its baseline converts nothing either
                text_rows = [tuple(driver_value(v, postgres=False) for v in row) for row in rows] if plain else rows
                for name in SIDES[n % 3 :] + SIDES[: n % 3]:
                    cpu = server.cpu_seconds() if server else 0.0
                    started = time.perf_counter()
                    await work[name](events, text_rows if name == "bulk" else rows)
                    seconds[name] += time.perf_counter() - started
                    server_cpu[name] += server.cpu_seconds() - cpu if server else 0.0
        # after the clock: a pipeline's retry of the first batch (all of it known already) and a batch in which each
        # person sends several events, some on the same day, so the checks also see dedupe and grouping at work
        timed = dict(stored)
        for events in (sent_to_api[:BATCH], busy_people(sent_to_api[:BATCH], now)):
            await api(events, [])
            sent_to_api += events
        known_again = stored["duplicates"] - timed["duplicates"]  # the resent batch's, all of it
        memory = {"process_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        if watch:
            memory["server_extra_mb"] = round(watch.extra_mb, 1)
        return {
            "seconds": seconds,
            "server_cpu": server_cpu,
            "stored": timed,
            "sent_to_api": sent_to_api,
            "known_again": known_again,
            "memory": memory,
        }
    finally:
        await client.close()
        await engine.dispose()
        if pg is not None:
            await pg.close()
        if plain is not None:
            plain.close()


def busy_people(batch: list[dict[str, Any]], now: datetime, people: int = 2_000) -> list[dict[str, Any]]:
    """Five events each from `people` people of a batch: names by popularity, instants over the last three days,
    so that one person has several events, several names and several events of one name on one day. Each is sent
    with the UTC offset of a zone of the workload's, so a day is the day where the event happened, as the product
    takes it (near midnight, not UTC's)."""
    rng = random.Random(SEED)
    zones = [ZoneInfo(zone) for zone, _, _ in ZONES if zone]
    events = []
    for person in batch[:people]:
        zone = rng.choice(zones)
        for _ in range(5):
            at = now - timedelta(seconds=rng.random() * 3 * 86_400)
            name = event_name(rng)
            events.append(person | {"name": name, "timestamp": at.astimezone(zone).isoformat()})
    return events


State = dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]


def expected_state(sent: list[dict[str, Any]]) -> State:
    """What every rollup row must hold after these events (duplicates counted once), worked out here in Python from
    the events themselves, not from the database: features, profiles with their recent active-day words, the
    active-day bits and the tenants' daily figures."""
    events = {(e["tenant_id"], e["user_id"], e["name"], datetime.fromisoformat(e["timestamp"])) for e in sent}
    features: dict[tuple[Any, ...], list[Any]] = {}
    profiles: dict[tuple[Any, ...], list[Any]] = {}
    words: dict[tuple[Any, ...], int] = defaultdict(int)
    daily: dict[tuple[Any, ...], list[Any]] = {}
    for tenant, person, name, at in events:
        for table, key in ((features, (tenant, person, name)), (profiles, (tenant, person))):
            row = table.setdefault(key, [0, at, at])
            row[0], row[1], row[2] = row[0] + 1, min(row[1], at), max(row[2], at)
        epoch_day = (at.date() - EPOCH).days
        words[(tenant, person, epoch_day // WORD_DAYS)] |= 1 << (epoch_day % WORD_DAYS)
        day = daily.setdefault((tenant, at.date()), [0, set()])
        day[0] += 1
        day[1].add(person)
    recent: dict[tuple[Any, ...], tuple[int, ...]] = {}
    newest_word: dict[tuple[Any, ...], int] = {}
    for tenant, person, word in words:
        newest_word[(tenant, person)] = max(word, newest_word.get((tenant, person), word))
    for key, word in newest_word.items():
        recent[key] = (word, *(words.get((*key, word - k), 0) for k in range(RECENT_WORDS)))
    return {
        "usage_features": {k: tuple(v) for k, v in features.items()},
        "usage_profiles": {k: (*v, *recent[k]) for k, v in profiles.items()},
        "usage_activity": dict((k, (v,)) for k, v in words.items()),
        "tenant_usage_daily": {k: (v[0], len(v[1])) for k, v in daily.items()},
        "usage_events": {(t, p, n, at): () for t, p, n, at in events},
    }


async def stored_state(url: str) -> State:
    """The same tables as the database holds them."""
    engine = create_engine(url)
    queries = {
        "usage_features": select(
            UsageFeature.tenant_id, UsageFeature.aad_object_id, UsageFeature.name,
            UsageFeature.total, UsageFeature.first_at, UsageFeature.last_at,
        ),
        "usage_profiles": select(
            UsageProfile.tenant_id, UsageProfile.aad_object_id, UsageProfile.events, UsageProfile.first_seen_at,
            UsageProfile.last_seen_at, UsageProfile.recent_word, *(getattr(UsageProfile, c) for c in RECENT_COLUMNS),
        ),
        "usage_activity": select(
            UsageActivity.tenant_id, UsageActivity.aad_object_id, UsageActivity.word, UsageActivity.bits
        ),
        "tenant_usage_daily": select(
            TenantUsageDaily.tenant_id, TenantUsageDaily.day, TenantUsageDaily.events, TenantUsageDaily.active_users
        ),
        "usage_events": select(UsageEvent.tenant_id, UsageEvent.aad_object_id, UsageEvent.name, UsageEvent.occurred_at),
    }  # fmt: skip
    keys = {"usage_features": 3, "usage_profiles": 2, "usage_activity": 3, "tenant_usage_daily": 2, "usage_events": 4}
    try:
        async with engine.connect() as connection:
            state: State = {}
            for table, query in queries.items():
                rows = (await connection.execute(query)).tuples().all()
                state[table] = {tuple(r[: keys[table]]): tuple(r[keys[table] :]) for r in rows}
                if len(state[table]) != len(rows):
                    state[table][("duplicate keys",)] = (len(rows) - len(state[table]),)
            return state
    finally:
        await engine.dispose()


def state_problems(expected: State, found: State) -> list[str]:
    """Row by row: rows missing, rows that should not be there, and rows whose figures differ (with one example)."""
    problems = []
    for table, want in expected.items():
        got = found.get(table, {})
        missing = want.keys() - got.keys()
        extra = got.keys() - want.keys()
        wrong = [k for k in want.keys() & got.keys() if want[k] != got[k]]
        if missing or extra or wrong:
            example = (
                f"{wrong[0]}: {got[wrong[0]]}, expected {want[wrong[0]]}"
                if wrong
                else f"{next(iter(missing or extra))}"
            )
            problems.append(
                f"{table}: {len(missing):,} rows missing, {len(extra):,} not expected, {len(wrong):,} wrong"
                f" of {len(want):,} (e.g. {example})"
            )
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
        expected = expected_state(measured["sent_to_api"])
        raw_rows_stored = {side: await _count_raw(urls[side]) for side in ("executemany", "bulk")}
        problems = state_problems(expected, await stored_state(urls["api"]))
        problems += [
            f"the {side} side stored {n:,} of {events:,} events" for side, n in raw_rows_stored.items() if n != events
        ]
        if measured["known_again"] != BATCH:
            problems.append(f"the API called {measured['known_again']:,} of {BATCH:,} resent events already known")
        result: dict[str, Any] = {
            "database": database,
            "batches": batches,
            "events": events,
            "active_days_checked": sum(bin(bits).count("1") for (bits,) in expected["usage_activity"].values()),
            "checked_after": "a resend of the first batch and 10,000 events from 2,000 busy people (untimed)",
            "events_per_second": {side: round(rate[side]) for side in SIDES},
            "api_over_bulk": round(rate["api"] / rate["bulk"], 3),
            "api_over_executemany": round(rate["api"] / rate["executemany"], 3),
            "stored_by_api": measured["stored"]["api"],
            # the API, both baselines and the load share this one process; on PostgreSQL, the server's growth too
            "memory_mb": measured["memory"],
            "problems": problems,
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
    baseline = is_baseline(parser, args)
    begin("ingestion", baseline)
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
    failed = [f"{r['database']}: {p}" for r in rows for p in r["problems"]]
    if not failed:
        print("every raw row and every rollup row is as the events sent make it, on each database")
    await finish("ingestion", rows, failed, baseline=baseline, batch_size=BATCH)


if __name__ == "__main__":
    asyncio.run(main())
