"""Targeting benchmark: Nurture's dry run of four campaigns (onboarding tips, re-engagement, a usage drop, an adoption
nudge) over 1,000,000 people with 90 days of daily activity rollups, against the same rules hand-written as one DuckDB
query over the same data in Parquet files: time, CPU and peak memory side by side, on PostgreSQL and SQLite.

The people are bench/workloads.py's: Zipf-sized tenants, installs over three years, mixed zones and locales, six
behaviours, several features each. Each side runs in a process of its own, so its peak memory is its own; on
PostgreSQL the server's CPU and private memory during Nurture's run are added to Nurture's (bench/server.py). Both
sides must match exactly the same (person, campaign) pairs, or the run fails. Each database's two sides run five
times, taking turns; the figures are the medians (a ratio is the median of the five runs' ratios). Run:
`python -m bench.targeting [--users 1000000] [--database both|postgresql|sqlite] [--pairs 5]`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
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

from bench import begin, finish, is_baseline
from bench.server import PostgresServer
from bench.workloads import (
    BEHAVIOURS,
    EVENTS,
    HOME_ZONE_SHARE,
    INSTALL_SKEW,
    INSTALL_YEARS,
    MILESTONE,
    OTHER_LOCALE,
    SEED,
    ZONES,
    tenant_sizes,
)
from bot.campaigns_file import parse_campaigns
from bot.engagement.asking import AskPolicy
from bot.engagement.targeting import Outcome
from bot.tuning import collector_paused
from bot.usecases.campaigns import CampaignConfig, Campaigns
from storage.engine import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import RECENT_COLUMNS, RECENT_WORDS
from storage.uow import UnitOfWork
from tests.support.database import create_postgres_database, drop_postgres_database

DAYS = 90  # days of daily activity rollups
PAIRS = 5  # runs of each side, taking turns
CAMPAIGNS = f"""
features:
  {MILESTONE}: {{label: {{en: Create a report}}}}
campaigns:
  - {{id: welcome-tips, kind: onboarding, days: [0, 3, 7, 14]}}
  - {{id: come-back, kind: reengagement, inactive_days: 30}}
  - {{id: fading, kind: legacy, window_days: 14, min_drop_percent: 50, min_previous_active_days: 4}}
  - {{id: first-report, kind: adoption, milestone: {MILESTONE}, within_days: 7, min_active_days: 3, window_days: 14}}
"""

# the same four rules over the Parquet files: every campaign each person matches (Nurture then decides which one
# goes first and which gates hold it; DuckDB is not asked to). Days are each person's local calendar days (their
# Teams time zone, else UTC), as Nurture counts them: "today", the install day and the day last seen.
DUCKDB_RULES = f"""
WITH person AS (
    SELECT tenant_id, aad_object_id, installed_at, coalesce(time_zone, 'UTC') AS zone,
           CAST(timezone(coalesce(time_zone, 'UTC'), $now) AS DATE) AS today
    FROM read_parquet($users)
), activity AS (
    SELECT p.tenant_id, p.aad_object_id,
           count(*) FILTER (WHERE d.day > p.today - 14) AS recent,
           count(*) FILTER (WHERE d.day <= p.today - 14) AS previous
    FROM read_parquet($daily) d JOIN person p USING (tenant_id, aad_object_id)
    WHERE d.day > p.today - 28 AND d.day <= p.today
    GROUP BY ALL
), milestone AS (
    SELECT tenant_id, aad_object_id FROM read_parquet($features) WHERE name = '{MILESTONE}' AND total > 0
), facts AS (
    SELECT u.tenant_id, u.aad_object_id, coalesce(a.recent, 0) AS recent, coalesce(a.previous, 0) AS previous,
           m.aad_object_id IS NOT NULL AS milestone,
           u.today - CAST(timezone(u.zone, u.installed_at) AS DATE) AS installed_days,
           u.today - CAST(timezone(u.zone, coalesce(p.last_seen_at, u.installed_at)) AS DATE) AS idle_days
    FROM person u
    LEFT JOIN read_parquet($profiles) p USING (tenant_id, aad_object_id)
    LEFT JOIN activity a USING (tenant_id, aad_object_id)
    LEFT JOIN milestone m USING (tenant_id, aad_object_id)
)
SELECT tenant_id, aad_object_id, unnest(list_filter([
           CASE WHEN installed_days BETWEEN 0 AND 5 OR installed_days BETWEEN 7 AND 9
                OR installed_days BETWEEN 14 AND 16 THEN 'welcome-tips' END,
           CASE WHEN idle_days >= 30 THEN 'come-back' END,
           CASE WHEN previous >= 4 AND recent <= previous * 0.5 THEN 'fading' END,
           CASE WHEN installed_days >= 7 AND NOT milestone AND recent >= 3 THEN 'first-report' END
       ], campaign -> campaign IS NOT NULL)) AS campaign
FROM facts
"""


def bench_now() -> datetime:
    """The last Tuesday 22:00 UTC: afternoon in the Americas, night in Europe, Wednesday morning in Asia and the
    Pacific. People's local days differ from UTC's and from each other's, so each rule must work out the person's
    own "today"; those in quiet hours are matched and then held, as on any real run."""
    today = datetime.now(UTC)
    now = today.replace(hour=22, minute=0, second=0, microsecond=0) - timedelta(days=(today.weekday() - 1) % 7)
    return now - timedelta(days=7) if now > today else now  # a Tuesday before 22:00: the week before


def _guid(seed: str) -> str:
    """SQL for a GUID drawn from `seed` (an MD5 digest in the 8-4-4-4-12 form): Entra's ids are random, so people
    share no long prefixes and sit in no particular order."""
    digest = f"md5({SEED} || '-' || {seed})"
    parts = [(1, 8), (9, 12), (13, 16), (17, 20), (21, 32)]
    return "concat_ws('-', " + ", ".join(f"{digest}[{a}:{b}]" for a, b in parts) + ")"


def _uniform(*salt: str) -> str:
    """SQL for a number in [0, 1) drawn from the seed, the row and `salt`: the same on every run."""
    return f"({_hash(*salt)} / 18446744073709551616.0)"


def _hash(*parts: str) -> str:
    """SQL for a 64-bit hash of the seed and `parts` joined in one string (DuckDB's hash of several values at once
    is not mixed enough: two such draws for one person came out correlated)."""
    return f"hash(concat_ws('/', {SEED}, {', '.join(parts)}))"


def generate(folder: Path, users: int, now: datetime) -> dict[str, int]:
    """The people and their rollups (bench/workloads.py's shapes), as Parquet: DuckDB reads it, and it is loaded
    into Nurture's tables. Drawn in SQL from the workload's tables, since a million people's days are too many
    for Python to draw quickly."""
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    today = now.date()
    sizes = tenant_sizes(users)
    first = [0, *itertools.accumulate(sizes)][:-1]
    zone_total = sum(weight for _, weight, _ in ZONES)
    db.execute("CREATE TABLE zones (z INTEGER, lo DOUBLE, hi DOUBLE, zone VARCHAR, locale VARCHAR)")
    bounds = [0, *itertools.accumulate(weight / zone_total for _, weight, _ in ZONES)]
    db.executemany(
        "INSERT INTO zones VALUES (?, ?, ?, ?, ?)",
        [(z, bounds[z], bounds[z + 1], zone, locale) for z, (zone, _, locale) in enumerate(ZONES)],
    )
    db.execute("CREATE TABLE tenants (t INTEGER, first_uid BIGINT, size BIGINT)")
    db.executemany("INSERT INTO tenants VALUES (?, ?, ?)", list(zip(range(len(sizes)), first, sizes, strict=True)))
    db.execute(
        "CREATE TABLE behaviours (b INTEGER, lo DOUBLE, hi DOUBLE, name VARCHAR, active DOUBLE, recent DOUBLE, "
        "idle INTEGER, milestone DOUBLE)"
    )
    shares = [0, *itertools.accumulate(b.share for b in BEHAVIOURS)]
    db.executemany(
        "INSERT INTO behaviours VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (i, shares[i] / shares[-1], shares[i + 1] / shares[-1], b.name, b.active, b.recent,
             b.idle_days_at_least, b.milestone)
            for i, b in enumerate(BEHAVIOURS)
        ],
    )  # fmt: skip
    span = INSTALL_YEARS * 365 * 86_400
    db.execute(
        f"""
        CREATE TABLE people AS
        WITH drawn AS (
            SELECT i AS uid, t.t,
                   CASE WHEN {_uniform("i", "'home'")} < {HOME_ZONE_SHARE} THEN {_uniform("t.t", "'zone'")}
                        ELSE {_uniform("i", "'zone'")} END AS zone_draw,
                   {_uniform("i", "'behaviour'")} AS behaviour_draw
            FROM range({users}) r(i) JOIN tenants t ON i >= t.first_uid AND i < t.first_uid + t.size
        )
        SELECT d.uid, {_guid("'tenant' || d.t")} AS tenant_id, {_guid("'person' || d.uid")} AS aad_object_id,
            TIMESTAMPTZ '{now.isoformat()}'
                - to_seconds(CAST({span} * pow({_uniform("d.uid", "'install'")}, {INSTALL_SKEW}) AS BIGINT))
                AS installed_at,
            z.zone AS time_zone,
            CASE WHEN {_uniform("d.uid", "'locale'")} < {OTHER_LOCALE[1]} THEN '{OTHER_LOCALE[0]}'
                 ELSE z.locale END AS locale,
            b.b AS behaviour, b.active, b.recent, b.milestone,
            CASE WHEN b.idle > 0 THEN b.idle + CAST({_uniform("d.uid", "'idle'")} * 400 AS INTEGER) ELSE 0 END
                AS idle_days
        FROM drawn d
        JOIN zones z ON d.zone_draw >= z.lo AND d.zone_draw < z.hi
        JOIN behaviours b ON d.behaviour_draw >= b.lo AND d.behaviour_draw < b.hi
        """
    )
    # a day's activity: only after the install day, at the behaviour's chance (its recent one in the last 14 days)
    db.execute(
        f"""
        CREATE TABLE daily AS SELECT tenant_id, aad_object_id, DATE '{today}' - CAST(d AS INTEGER) AS day,
            CAST(1 + {_hash("uid", "d", "'count'")} % 6 AS INTEGER) AS count
        FROM people, range({DAYS}) r(d)
        WHERE DATE '{today}' - CAST(d AS INTEGER) >= CAST(installed_at AS DATE) AND d >= idle_days
          AND {_uniform("uid", "d", "'day'")} < CASE WHEN d < 14 THEN recent ELSE active END
        """
    )
    # last seen: the last active day; for people gone longer than the rollups reach, the day they left
    db.execute(
        f"""
        CREATE TABLE profiles AS
        WITH seen AS (SELECT tenant_id, aad_object_id, min(day) AS first_day, max(day) AS last_day,
                             CAST(sum(count) AS INTEGER) AS events FROM daily GROUP BY ALL)
        SELECT p.tenant_id, p.aad_object_id,
            greatest(p.installed_at, coalesce(CAST(s.first_day AS TIMESTAMPTZ) + INTERVAL 12 HOUR,
                     TIMESTAMPTZ '{now.isoformat()}' - to_days(p.idle_days))) AS first_seen_at,
            greatest(p.installed_at, coalesce(CAST(s.last_day AS TIMESTAMPTZ) + INTERVAL 12 HOUR,
                     TIMESTAMPTZ '{now.isoformat()}' - to_days(p.idle_days))) AS last_seen_at,
            coalesce(s.events, 1 + CAST({_hash("p.uid", "'events'")} % 50 AS INTEGER)) AS events
        FROM people p LEFT JOIN seen s USING (tenant_id, aad_object_id)
        WHERE s.aad_object_id IS NOT NULL OR p.idle_days > 0
        """
    )
    # the features each person used: the milestone at the behaviour's chance, and a few others by popularity
    others = [name for name, weight in EVENTS if name != MILESTONE for _ in range(weight)]  # by popularity
    names = ", ".join(f"'{name}'" for name in others)
    db.execute(
        f"""
        CREATE TABLE features AS
        SELECT p.tenant_id, p.aad_object_id, '{MILESTONE}' AS name,
            CAST(1 + {_hash("p.uid", "'total'")} % 20 AS INTEGER) AS total,
            f.first_seen_at AS first_at, f.last_seen_at AS last_at
        FROM people p JOIN profiles f USING (tenant_id, aad_object_id)
        WHERE {_uniform("p.uid", "'milestone'")} < p.milestone
        UNION ALL
        SELECT DISTINCT ON (p.tenant_id, p.aad_object_id, name) p.tenant_id, p.aad_object_id,
            [{names}][1 + CAST({_hash("p.uid", "k", "'name'")} % {len(others)} AS INTEGER)] AS name,
            CAST(1 + {_hash("p.uid", "k", "'total'")} % 40 AS INTEGER), f.first_seen_at, f.last_seen_at
        FROM people p JOIN profiles f USING (tenant_id, aad_object_id), range(3) r(k)
        """
    )
    for table in ("people", "daily", "profiles", "features"):
        db.execute(f"COPY {table} TO '{folder / table}.parquet' (FORMAT parquet)")
    counts = {t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in ("people", "daily")}  # type: ignore[index]
    counts["tenants"] = len(sizes)
    db.close()
    return counts


TABLES: dict[str, tuple[str, list[str]]] = {
    "tenants": (
        "SELECT DISTINCT tenant_id, {now} AS first_seen_at, {now} AS last_seen_at FROM '{folder}/people.parquet'",
        ["tenant_id", "first_seen_at", "last_seen_at"],
    ),
    "users": (
        "SELECT uid + 1, tenant_id, aad_object_id, locale, time_zone, {installed}, {now}, {now} "
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
    started, cpu = time.perf_counter(), time.process_time()
    plan = await Campaigns(lambda: UnitOfWork(session_factory(engine)), config, collector_paused).plan(
        now
    )  # as the app
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await engine.dispose()
    chosen = sorted((t.aad_object_id, t.campaign_id) for t in plan.targets)  # every match, whatever its outcome
    outcomes = {o.value: sum(1 for t in plan.targets if t.outcome is o) for o in Outcome}
    await asyncio.to_thread(out.write_text, json.dumps(chosen))
    return _figures(seconds, cpu, len(chosen)) | {"outcomes": outcomes}


def duckdb_side(folder: Path, now: datetime, out: Path) -> dict[str, Any]:
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    files = {name: str(folder / f"{name}.parquet") for name in ("daily", "features", "profiles")}
    started, cpu = time.perf_counter(), time.process_time()
    found = db.execute(DUCKDB_RULES, {"now": now, "users": str(folder / "people.parquet"), **files}).fetchall()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    chosen = sorted((aad, campaign) for _, aad, campaign in found)
    out.write_text(json.dumps(chosen))
    return _figures(seconds, cpu, len(chosen))


def _figures(seconds: float, cpu: float, targets: int) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "targets": targets,
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def side(*args: str, server: PostgresServer | None = None) -> dict[str, Any]:
    """One side's run in a process of its own; with `server`, what the PostgreSQL server spent meanwhile too."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.targeting", *args, stdout=asyncio.subprocess.PIPE
    )
    if server is None:
        out, _ = await process.communicate()
        figures = dict(json.loads(out)) if not process.returncode else {}
    else:
        with server.watch() as watch:
            out, _ = await process.communicate()
        figures = dict(json.loads(out)) if not process.returncode else {}
        figures["server_cpu_seconds"] = round(watch.cpu, 2)
        figures["server_extra_mb"] = round(watch.peak_mb - watch.before_mb, 1)
    if process.returncode:
        raise RuntimeError(f"bench.targeting {args[0]} failed")
    return figures


def _all_cpu(run: dict[str, Any]) -> float:
    return float(run["cpu_seconds"] + run.get("server_cpu_seconds", 0.0))


def _all_memory(run: dict[str, Any]) -> float:
    return float(run["peak_rss_mb"] + run.get("server_extra_mb", 0.0))


async def run_database(database: str, folder: Path, users: int, now: datetime, pairs: int = PAIRS) -> dict[str, Any]:
    """Load the data into a new database, then run the two sides `pairs` times, taking turns, each run in a process
    of its own: the machine's ups and downs fall on both, and the median of the pairs' ratios is the figure. Every
    run of either side must match the same pairs (person, campaign)."""
    url = (
        f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        if database == "sqlite"
        else create_postgres_database("nurture_targeting")
    )
    server = PostgresServer() if database == "postgresql" else None
    try:
        upgrade(url)
        started = time.perf_counter()
        if database == "sqlite":
            load_sqlite(url, folder, now)
        else:
            await load_postgres(url, folder, now)
        loaded = time.perf_counter() - started
        runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        differing = 0
        moment = now.isoformat()
        for _ in range(pairs):
            nurture = await side(
                "nurture", "--database", url, "--now", moment, "--out", str(folder / "n.json"), server=server
            )
            ducks = await side("duckdb", "--folder", str(folder), "--now", moment, "--out", str(folder / "d.json"))
            differing += (folder / "n.json").read_text() != (folder / "d.json").read_text()
            runs.append((nurture, ducks))
        time_ratios = [n["seconds"] / max(d["seconds"], 0.001) for n, d in runs]
        cpu_ratios = [_all_cpu(n) / max(d["cpu_seconds"], 0.001) for n, d in runs]
        nurture, ducks = (_median_run([run[k] for run in runs]) for k in (0, 1))
        return {
            "database": database,
            "users": users,
            "load_seconds": round(loaded, 1),
            "nurture": nurture,
            "duckdb": ducks,
            "runs_with_other_targets": differing,
            "time_ratio": round(statistics.median(time_ratios), 2),
            "cpu_ratio": round(statistics.median(cpu_ratios), 2),
            "memory_ratio": round(_all_memory(nurture) / max(ducks["peak_rss_mb"], 0.1), 2),
            "pairs": [
                {"nurture": n, "duckdb": d, "time_ratio": round(t, 2), "cpu_ratio": round(c, 2)}
                for (n, d), t, c in zip(runs, time_ratios, cpu_ratios, strict=True)
            ],
        }
    finally:
        if database != "sqlite":
            drop_postgres_database(url)
        (folder / "bench.db").unlink(missing_ok=True)


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's figures over its runs: median times, the largest peak memory, the targets (checked alike)."""
    figures: dict[str, Any] = {
        key: round(statistics.median(r[key] for r in runs), 2)
        for key in ("seconds", "cpu_seconds", "server_cpu_seconds")
        if key in runs[0]
    }
    for key in ("peak_rss_mb", "server_extra_mb"):
        if key in runs[0]:
            figures[key] = max(r[key] for r in runs)
    figures["targets"] = runs[0]["targets"]
    if "outcomes" in runs[0]:
        figures["outcomes"] = runs[0]["outcomes"]
    return figures


def problems(run: dict[str, Any]) -> list[str]:
    """What makes a run's figures worthless: the sides matched different people, or nobody at all."""
    found = []
    if run["runs_with_other_targets"]:
        found.append(
            f"{run['database']}: Nurture and DuckDB matched different people in {run['runs_with_other_targets']} runs"
        )
    if not run["nurture"]["targets"]:
        found.append(f"{run['database']}: no person matched any campaign")
    return found


async def main(args: argparse.Namespace) -> None:
    # the Parquet files (~150 MB a million people) go when the run ends
    with tempfile.TemporaryDirectory(prefix="nurture-targeting-") as folder:
        await compare(args, bench_now(), Path(folder))


async def compare(args: argparse.Namespace, now: datetime, folder: Path) -> None:
    started = time.perf_counter()
    counts = generate(folder, args.users, now)
    took = time.perf_counter() - started
    print(
        f"generated {counts['people']:,} people in {counts['tenants']:,} tenants, {counts['daily']:,} daily rows"
        f" in {took:.0f} s"
    )
    databases = ("postgresql", "sqlite") if args.database == "both" else (args.database,)
    runs = []
    for database in databases:
        runs.append(await run_database(database, folder, args.users, now, args.pairs))
        run = runs[-1]
        n, d = run["nurture"], run["duckdb"]
        server = (
            f" + server {n['server_cpu_seconds']} s CPU, {n['server_extra_mb']} MB" if "server_cpu_seconds" in n else ""
        )
        print(
            f"{database:>10}: Nurture {n['seconds']} s, {n['cpu_seconds']} s CPU, {n['peak_rss_mb']} MB peak{server};"
            f" DuckDB {d['seconds']} s, {d['cpu_seconds']} s CPU, {d['peak_rss_mb']} MB peak (medians of"
            f" {len(run['pairs'])}); time {run['time_ratio']}x, CPU {run['cpu_ratio']}x, memory {run['memory_ratio']}x;"
            f" {n['targets']:,} matched (outcomes {n['outcomes']}); loaded in {run['load_seconds']} s"
        )
    await finish(
        "targeting",
        runs,
        [p for run in runs for p in problems(run)],
        baseline=args.baseline,
        people=counts["people"],
        tenants=counts["tenants"],
        daily_rows=counts["daily"],
        now=now.isoformat(),
    )


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
    arguments = sys.argv[1:]
    if not arguments or arguments[0] not in ("run", "nurture", "duckdb", "-h", "--help"):
        arguments = ["run", *arguments]  # `run` is the default: `python -m bench.targeting --users 100000` works too
    parsed = parser.parse_args(arguments)
    if parsed.command == "nurture":
        result = asyncio.run(nurture_side(parsed.database, datetime.fromisoformat(parsed.now), Path(parsed.out)))
        print(json.dumps(result))
    elif parsed.command == "duckdb":
        print(json.dumps(duckdb_side(Path(parsed.folder), datetime.fromisoformat(parsed.now), Path(parsed.out))))
    else:
        parsed.baseline = is_baseline(run, parsed)
        begin("targeting", parsed.baseline)
        asyncio.run(main(parsed))
