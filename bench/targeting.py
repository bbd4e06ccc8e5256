"""Targeting benchmark: Nurture's dry run of three campaigns (re-engagement, a usage drop, an adoption nudge) over
1,000,000 people with 90 days of daily activity rollups, against the same rules hand-written as one DuckDB query over
the same data exported to Parquet — time and peak memory, side by side, on PostgreSQL and SQLite.

The data is generated (deterministically) by DuckDB: people in 10 tenants and four behaviours (regular, fading,
gone for 35+ days, light), their ids random-looking GUIDs as Entra's are (ids counted up in order shared long
prefixes and kept each person's rows next to the one before, which flattered look-ups by key). It is written to
Parquet for DuckDB and loaded into Nurture's tables (users, personal chats, usage_activity, usage_profiles,
usage_features). Each side runs in its own process, so its peak memory (ru_maxrss) is its own; both must pick
exactly the same (person, campaign) pairs, or the run says so.
Each database's two sides run five times, taking turns; the figures are the medians. Run: `python -m bench.targeting
[run [--users 1000000] [--database both|postgresql|sqlite] [--pairs 5]]` (a run of one database keeps the other's
figures in bench/results/targeting.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import duckdb
from sqlalchemy.engine import make_url

from bench import merged_runs
from bot.campaigns_file import parse_campaigns
from bot.engagement.asking import AskPolicy
from bot.engagement.targeting import Outcome
from bot.usecases.campaigns import CampaignConfig, Campaigns
from storage.engine import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import RECENT_COLUMNS, RECENT_WORDS
from storage.uow import UnitOfWork
from tests.support.database import create_postgres_database, drop_postgres_database

RESULTS = Path(__file__).parent / "results"
TENANTS = 10
DAYS = 90
PAIRS = 5  # runs of each side, taking turns
CAMPAIGNS = """
features:
  report_created: {label: {en: Create a report}}
campaigns:
  - {id: come-back, kind: reengagement, inactive_days: 30}
  - {id: fading, kind: legacy, window_days: 14, min_drop_percent: 50, min_previous_active_days: 4}
  - {id: first-report, kind: adoption, milestone: report_created, within_days: 7, min_active_days: 3, window_days: 14}
"""

# the same three rules, first match wins, over the Parquet files ($today: the people's local day; all are in UTC)
DUCKDB_RULES = """
WITH activity AS (
    SELECT tenant_id, aad_object_id,
           count(*) FILTER (WHERE day > $today - 14) AS recent,
           count(*) FILTER (WHERE day <= $today - 14) AS previous
    FROM read_parquet($daily) WHERE day > $today - 28 AND day <= $today
    GROUP BY ALL
), milestone AS (
    SELECT tenant_id, aad_object_id FROM read_parquet($features) WHERE name = 'report_created' AND total > 0
)
SELECT u.tenant_id, u.aad_object_id,
       CASE
           WHEN $today - CAST(coalesce(p.last_seen_at, u.installed_at) AS DATE) >= 30 THEN 'come-back'
           WHEN coalesce(a.previous, 0) >= 4 AND coalesce(a.recent, 0) <= a.previous * 0.5 THEN 'fading'
           WHEN $today - CAST(u.installed_at AS DATE) >= 7 AND m.aad_object_id IS NULL
                AND coalesce(a.recent, 0) >= 3 THEN 'first-report'
       END AS campaign
FROM read_parquet($users) u
LEFT JOIN read_parquet($profiles) p USING (tenant_id, aad_object_id)
LEFT JOIN activity a USING (tenant_id, aad_object_id)
LEFT JOIN milestone m USING (tenant_id, aad_object_id)
WHERE campaign IS NOT NULL
"""


def bench_now() -> datetime:
    """The last Tuesday 10:00 UTC: outside quiet hours and weekends, so the gates let every match through."""
    now = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    return now - timedelta(days=(now.weekday() - 1) % 7)


def _guid(seed: str) -> str:
    """SQL for a GUID drawn from `seed` (an MD5 digest in the 8-4-4-4-12 form): Entra's ids are random, so people
    share no long prefixes and sit in no particular order."""
    digest = f"md5({seed})"
    parts = [(1, 8), (9, 12), (13, 16), (17, 20), (21, 32)]
    return "concat_ws('-', " + ", ".join(f"{digest}[{a}:{b}]" for a, b in parts) + ")"


def generate(folder: Path, users: int, now: datetime) -> dict[str, int]:
    """The people and their rollups, as Parquet (for DuckDB) and CSV (for loading into Nurture's tables)."""
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    today = now.date()
    db.execute(
        f"""
        CREATE TABLE people AS SELECT i AS uid, {_guid(f"'tenant' || i % {TENANTS}")} AS tenant_id,
            {_guid("'person' || i")} AS aad_object_id,
            TIMESTAMPTZ '{(now - timedelta(days=200)).isoformat()}' AS installed_at, i % 20 AS segment
        FROM range({users}) t(i)
        """
    )
    # regular 30 % (active 40 % of days), fading 15 % (60 % before the last 14 days, 10 % in them),
    # gone 20 % (nothing in the last 35 days), light 35 % (10 %)
    db.execute(
        f"""
        CREATE TABLE daily AS SELECT tenant_id, aad_object_id, DATE '{today}' - CAST(d AS INTEGER) AS day,
            CAST(1 + hash(uid, d, 7) % 5 AS INTEGER) AS count
        FROM people, range({DAYS}) r(d)
        WHERE hash(uid, d) % 100 < CASE
            WHEN segment < 6 THEN 40
            WHEN segment < 9 THEN CASE WHEN d < 14 THEN 10 ELSE 60 END
            WHEN segment < 13 THEN CASE WHEN d < 35 THEN 0 ELSE 40 END
            ELSE 10 END
        """
    )
    db.execute(
        """
        CREATE TABLE profiles AS SELECT tenant_id, aad_object_id,
            CAST(min(day) AS TIMESTAMPTZ) + INTERVAL 12 HOUR AS first_seen_at,
            CAST(max(day) AS TIMESTAMPTZ) + INTERVAL 12 HOUR AS last_seen_at, CAST(sum(count) AS INTEGER) AS events
        FROM daily GROUP BY ALL
        """
    )
    db.execute(
        f"""
        CREATE TABLE features AS SELECT tenant_id, aad_object_id, 'report_created' AS name,
            CAST(1 + uid % 3 AS INTEGER) AS total,
            TIMESTAMPTZ '{(now - timedelta(days=100)).isoformat()}' AS first_at,
            TIMESTAMPTZ '{(now - timedelta(days=40)).isoformat()}' AS last_at
        FROM people WHERE uid % 5 < 2
        """
    )
    for table in ("people", "daily", "profiles", "features"):
        db.execute(f"COPY {table} TO '{folder / table}.parquet' (FORMAT parquet)")
    counts = {t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in ("people", "daily")}  # type: ignore[index]
    db.close()
    return counts


TABLES: dict[str, tuple[str, list[str]]] = {
    "tenants": (
        "SELECT DISTINCT tenant_id, {now} AS first_seen_at, {now} AS last_seen_at FROM '{folder}/people.parquet'",
        ["tenant_id", "first_seen_at", "last_seen_at"],
    ),
    "users": (
        "SELECT uid + 1, tenant_id, aad_object_id, 'en-US', 'UTC', {installed}, {now}, {now} "
        "FROM '{folder}/people.parquet' ORDER BY uid",
        ["id", "tenant_id", "aad_object_id", "locale", "time_zone", "installed_at", "created_at", "updated_at"],
    ),
    "conversation_references": (
        "SELECT uid + 1, 'a:' || aad_object_id, tenant_id, uid + 1, 'personal', 'msteams', "
        "'https://smba.trafficmanager.net/teams/', '28:bench-bot', {now}, {now} FROM '{folder}/people.parquet'",
        [
            "id", "conversation_id", "tenant_id", "user_id", "scope", "channel_id", "service_url", "bot_id",
            "created_at", "updated_at",
        ],
    ),
    "usage_activity": (
        "SELECT tenant_id, aad_object_id, e // 62, sum(CAST(1 AS BIGINT) << (e % 62)), 0 FROM (SELECT tenant_id, "
        "aad_object_id, CAST(day - DATE '1970-01-01' AS INTEGER) AS e FROM '{folder}/daily.parquet') GROUP BY ALL",
        ["tenant_id", "aad_object_id", "word", "bits", "added"],
    ),
    "usage_profiles": (  # with each person's four newest words, as the folds keep them
        "WITH words AS (SELECT tenant_id, aad_object_id, e // 62 AS word, sum(CAST(1 AS BIGINT) << (e % 62)) AS bits "
        "FROM (SELECT tenant_id, aad_object_id, CAST(day - DATE '1970-01-01' AS INTEGER) AS e "
        "FROM '{folder}/daily.parquet') GROUP BY ALL), "
        "tops AS (SELECT tenant_id, aad_object_id, max(word) AS top FROM words GROUP BY ALL) "
        "SELECT p.tenant_id, p.aad_object_id, {first}, {last}, p.events, t.top, "
        + ", ".join(
            f"CAST(coalesce(sum(w.bits) FILTER (WHERE w.word = t.top - {k}), 0) AS BIGINT)" for k in range(RECENT_WORDS)
        )
        + " FROM '{folder}/profiles.parquet' p JOIN tops t USING (tenant_id, aad_object_id) "
        "JOIN words w USING (tenant_id, aad_object_id) "
        "GROUP BY p.tenant_id, p.aad_object_id, p.first_seen_at, p.last_seen_at, p.events, t.top",
        ["tenant_id", "aad_object_id", "first_seen_at", "last_seen_at", "events", "recent_word", *RECENT_COLUMNS],
    ),
    "usage_features": (
        "SELECT tenant_id, aad_object_id, name, total, {first_at}, {last_at} FROM '{folder}/features.parquet'",
        ["tenant_id", "aad_object_id", "name", "total", "first_at", "last_at"],
    ),
}  # fmt: skip


def table_query(table: str, folder: Path, now: datetime, sqlite_times: bool) -> str:
    sql, _ = TABLES[table]

    def stamp(expression: str) -> str:
        return f"strftime({expression}, '%Y-%m-%d %H:%M:%S.000000')" if sqlite_times else expression

    return sql.format(
        folder=folder,
        now=stamp(f"TIMESTAMPTZ '{now.isoformat()}'"),
        installed=stamp("installed_at"),
        first=stamp("first_seen_at"),
        last=stamp("last_seen_at"),
        first_at=stamp("first_at"),
        last_at=stamp("last_at"),
    )


async def load_postgres(url: str, folder: Path, now: datetime) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    try:
        for table, (_, columns) in TABLES.items():
            csv = folder / f"{table}.csv"
            db.execute(f"COPY ({table_query(table, folder, now, False)}) TO '{csv}' (HEADER false)")
            await connection.copy_to_table(table, source=str(csv), columns=columns, format="csv")
            csv.unlink()
        await connection.execute("ANALYZE")
    finally:
        db.close()
        await connection.close()


def load_sqlite(url: str, folder: Path, now: datetime) -> None:
    path = make_url(url).database
    assert path
    connection = sqlite3.connect(path)
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    try:
        for table, (_, columns) in TABLES.items():
            cursor = db.execute(table_query(table, folder, now, True))
            marks = ", ".join("?" for _ in columns)
            statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            while batch := cursor.fetchmany(100_000):
                connection.executemany(statement, batch)
            connection.commit()
        connection.execute("ANALYZE")
        connection.commit()
    finally:
        db.close()
        connection.close()


# -- the two sides, each in its own process -------------------------------------------------------------------


async def nurture_side(url: str, now: datetime, out: Path) -> dict[str, Any]:
    engine = create_engine(url)
    config = CampaignConfig(parse_campaigns(CAMPAIGNS), AskPolicy(), "Bench")
    started = time.perf_counter()
    plan = await Campaigns(lambda: UnitOfWork(session_factory(engine)), config).plan(now)
    seconds = time.perf_counter() - started
    await engine.dispose()
    chosen = sorted((t.aad_object_id, t.campaign_id) for t in plan.targets if t.outcome is Outcome.SEND)
    await asyncio.to_thread(out.write_text, json.dumps(chosen))
    return {"seconds": round(seconds, 2), "targets": len(chosen), "peak_rss_mb": peak_rss_mb()}


def duckdb_side(folder: Path, now: datetime, out: Path) -> dict[str, Any]:
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    files = {name: str(folder / f"{name}.parquet") for name in ("daily", "features", "profiles")}
    started = time.perf_counter()
    found = db.execute(DUCKDB_RULES, {"today": now.date(), "users": str(folder / "people.parquet"), **files}).fetchall()
    seconds = time.perf_counter() - started
    chosen = sorted((aad, campaign) for _, aad, campaign in found)
    out.write_text(json.dumps(chosen))
    return {"seconds": round(seconds, 2), "targets": len(chosen), "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def side(*args: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.targeting", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"bench.targeting {args[0]} failed")
    return dict(json.loads(out))


async def run_database(database: str, folder: Path, users: int, now: datetime, pairs: int = PAIRS) -> dict[str, Any]:
    """Load the data into a new database, then run the two sides `pairs` times, taking turns, each run in a process
    of its own: the VM's ups and downs (±20–40 % from minute to minute here) fall on both, and the median of the
    pairs' ratios is the figure. Every run of either side must choose the same pairs (person, campaign)."""
    url = (
        f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        if database == "sqlite"
        else create_postgres_database("nurture_targeting")
    )
    try:
        upgrade(url)
        started = time.perf_counter()
        if database == "sqlite":
            load_sqlite(url, folder, now)
        else:
            await load_postgres(url, folder, now)
        loaded = time.perf_counter() - started
        runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        same = True
        moment = now.isoformat()
        for _ in range(pairs):
            nurture = await side("nurture", "--database", url, "--now", moment, "--out", str(folder / "n.json"))
            ducks = await side("duckdb", "--folder", str(folder), "--now", moment, "--out", str(folder / "d.json"))
            same = same and (folder / "n.json").read_text() == (folder / "d.json").read_text()
            runs.append((nurture, ducks))
        ratios = [n["seconds"] / max(d["seconds"], 0.001) for n, d in runs]
        nurture, ducks = (_median_run([run[k] for run in runs]) for k in (0, 1))
        return {
            "database": database,
            "users": users,
            "load_seconds": round(loaded, 1),
            "nurture": nurture,
            "duckdb": ducks,
            "same_targets": same,
            "time_ratio": round(statistics.median(ratios), 2),
            "memory_ratio": round(nurture["peak_rss_mb"] / max(ducks["peak_rss_mb"], 0.1), 1),
            "pairs": [
                {"nurture_seconds": n["seconds"], "duckdb_seconds": d["seconds"], "time_ratio": round(r, 2)}
                for (n, d), r in zip(runs, ratios, strict=True)
            ],
        }
    finally:
        if database != "sqlite":
            drop_postgres_database(url)
        (folder / "bench.db").unlink(missing_ok=True)


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's figures over its runs: the median time, the largest peak memory, the targets (all alike)."""
    return {
        "seconds": round(statistics.median(r["seconds"] for r in runs), 2),
        "targets": runs[0]["targets"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


async def main(args: argparse.Namespace) -> None:
    # the Parquet files (~100 MB a million people) go when the run ends
    with tempfile.TemporaryDirectory(prefix="nurture-targeting-") as folder:
        await compare(args, bench_now(), Path(folder))


async def compare(args: argparse.Namespace, now: datetime, folder: Path) -> None:
    started = time.perf_counter()
    counts = generate(folder, args.users, now)
    took = time.perf_counter() - started
    print(f"generated {counts['people']:,} people, {counts['daily']:,} daily rows in {took:.0f} s")
    databases = ("postgresql", "sqlite") if args.database == "both" else (args.database,)
    runs = []
    for database in databases:
        runs.append(await run_database(database, folder, args.users, now, args.pairs))
        run = runs[-1]
        each = ", ".join(f"{p['nurture_seconds']}/{p['duckdb_seconds']} s = {p['time_ratio']}x" for p in run["pairs"])
        print(
            f"{database:>10}: Nurture {run['nurture']['seconds']} s, {run['nurture']['peak_rss_mb']} MB peak; "
            f"DuckDB {run['duckdb']['seconds']} s, {run['duckdb']['peak_rss_mb']} MB peak (medians); "
            f"time {run['time_ratio']}x (median of the pairs: {each}), memory {run['memory_ratio']}x; "
            f"{run['nurture']['targets']:,} targets, {'the same' if run['same_targets'] else 'NOT the same'} "
            f"on both sides (loaded in {run['load_seconds']} s)"
        )
    RESULTS.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    file = RESULTS / "targeting.json"
    runs = merged_runs(file, runs, "postgresql")
    result = {"machine": machine, "daily_rows": counts["daily"], "now": now.isoformat(), "runs": runs}
    file.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run")
    run.add_argument("--users", type=int, default=1_000_000)
    run.add_argument("--database", choices=("both", "postgresql", "sqlite"), default="both")
    run.add_argument("--pairs", type=int, default=PAIRS, help="runs of each side, taking turns")
    nurture = sub.add_parser("nurture")
    nurture.add_argument("--database", required=True)
    nurture.add_argument("--now", required=True)
    nurture.add_argument("--out", required=True)
    ducks = sub.add_parser("duckdb")
    ducks.add_argument("--folder", required=True)
    ducks.add_argument("--now", required=True)
    ducks.add_argument("--out", required=True)
    parsed = parser.parse_args(sys.argv[1:] or ["run"])
    if parsed.command == "nurture":
        result = asyncio.run(nurture_side(parsed.database, datetime.fromisoformat(parsed.now), Path(parsed.out)))
        print(json.dumps(result))
    elif parsed.command == "duckdb":
        print(json.dumps(duckdb_side(Path(parsed.folder), datetime.fromisoformat(parsed.now), Path(parsed.out))))
    else:
        asyncio.run(main(parsed))
