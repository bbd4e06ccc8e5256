"""Delivery benchmark: proactive cards for 1, 4 and 20 tenants through `nurture deliver` processes (1 and 2), against
the fake Teams connector, which enforces Teams' limits (per conversation, and 50 requests/s per tenant) and answers
each request after 50-150 ms, as Teams does from afar.

The workload is bench/workloads.py's: ten cards a conversation (so the per-conversation limits bind) and tenants
with thousands of cards each (500 each for 20 tenants). The rate is counted over the whole run, from starting the
processes to the last one's exit: start-up and drain included. CPU per send counts the `nurture deliver` processes
and, on PostgreSQL, the database server. Fails (exit 1) when any card is lost or sent twice, any request broke
Teams' limits, or a process failed. Run: `python -m bench.delivery [--database both|postgresql|sqlite]
[--processes 1 2] [--tenant-rate R] [--scale 0.1]` (default: the product's own NURTURE_TENANT_RATE; --scale
sends that share of the cards, for a quick look).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import begin, finish, is_baseline
from bench.server import Peak, PostgresServer, resident_mb
from bench.workloads import CARDS_PER_CONVERSATION, CONNECTOR_DELAY_SECONDS, CONNECTOR_JITTER_SECONDS, DELIVERY_SHAPES
from bot.engagement.delivery import TEAMS_TENANT_LIMIT
from storage.migrate import upgrade
from tests.support.cli import clean_env
from tests.support.connector import FakeConnector
from tests.support.database import create_postgres_database, drop_postgres_database
from tests.support.seed import seed_outbox


async def run_once(
    database: str,
    tenants: int,
    cards_per_tenant: int,
    processes: int,
    tenant_rate: float | None = None,
    cards_per_conversation: int = CARDS_PER_CONVERSATION,
    workers: int = 2,
) -> dict[str, Any]:
    connector = FakeConnector(
        enforce_limits=True,
        tenant_rate=TEAMS_TENANT_LIMIT,
        keep_bodies=False,
        delay_seconds=CONNECTOR_DELAY_SECONDS,
        jitter_seconds=CONNECTOR_JITTER_SECONDS,
    )
    await connector.start()
    work = Path(tempfile.mkdtemp(prefix="nurture-bench-"))
    url = (
        f"sqlite+aiosqlite:///{work / 'bench.db'}"
        if database == "sqlite"
        else create_postgres_database("nurture_bench")
    )
    server = PostgresServer() if database == "postgresql" else None
    messages = tenants * cards_per_tenant
    try:
        upgrade(url)
        tenant_ids = [f"{t:08d}-0000-0000-0000-000000000000" for t in range(tenants)]
        conversations = await seed_outbox(
            url,
            connector.service_url,
            tenant_ids,
            max(1, cards_per_tenant // cards_per_conversation),
            messages_per_conversation=cards_per_conversation,
        )
        messages = len(conversations) * cards_per_conversation
        # the fake connector stands in for Teams and stamps arrival times: its own full garbage collections would
        # bunch those stamps into violations Teams would not see
        gc.collect()
        gc.freeze()
        env = clean_env(
            NURTURE_DATABASE_URL=url,
            NURTURE_DEV_MODE="1",
            NURTURE_LOG_LEVEL="WARNING",
            **({"NURTURE_TENANT_RATE": str(tenant_rate)} if tenant_rate else {}),
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        crew: list[asyncio.subprocess.Process] = []
        with (
            server.watch() if server else contextlib.nullcontext() as watch,
            Peak(lambda: resident_mb([p.pid for p in crew])) as crew_memory,
        ):
            started = time.perf_counter()
            for _ in range(processes):
                crew.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "bot", "deliver", "--once", "--quiet", "--workers", str(workers),
                        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                    )
                )  # fmt: skip
            errors = [(await p.communicate())[1].decode()[-300:] for p in crew]
            wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the `nurture deliver` processes, start-up included
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        stamps = sorted(t for per_tenant in connector._per_tenant.values() for t in per_tenant)
        sending = stamps[-1] - stamps[0] if len(stamps) > 1 else wall
        seeded = [(c, f"{c}:{n}") for c in conversations for n in range(cards_per_conversation)]
        delivered = list(zip(connector.accepted, connector.accepted_summaries, strict=True))
        lost, duplicated = lost_and_duplicated(seeded, delivered)
        ceiling = tenants * TEAMS_TENANT_LIMIT
        result = {
            "database": database,
            "tenants": tenants,
            "processes": processes,
            "workers_per_process": workers,
            "messages": messages,
            "cards_per_conversation": cards_per_conversation,
            "tenant_rate_setting": tenant_rate or "default",
            "ceiling_per_second": ceiling,
            "wall_seconds": round(wall, 2),
            "rate_per_second": round(messages / wall, 1),
            "rate_over_ceiling": round(messages / wall / ceiling, 3),
            "first_to_last_arrival_seconds": round(sending, 2),
            "deliver_cpu_ms_per_send": round(cpu * 1000 / messages, 2),
            "deliver_peak_mb": round(crew_memory.mb, 1),  # all processes together
            "violations": len(connector.violations),
            "violation_examples": connector.violations[:5],
            "lost": lost,
            "duplicated": duplicated,
            "exit_codes": [p.returncode for p in crew],
            "errors": [e for e, p in zip(errors, crew, strict=True) if p.returncode],
        }
        if watch is not None:
            result["server_cpu_ms_per_send"] = round(watch.cpu * 1000 / messages, 2)
            result["server_extra_mb"] = round(watch.extra_mb, 1)
        return result
    finally:
        gc.unfreeze()
        await connector.close()
        if database != "sqlite":
            drop_postgres_database(url)
        shutil.rmtree(work, ignore_errors=True)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}es" if word.endswith("s") else f"{n:,} {word}s"


def lost_and_duplicated(seeded: list[tuple[str, str]], delivered: list[tuple[str, str | None]]) -> tuple[int, int]:
    """Cards never delivered, and deliveries beyond one a card (or of no seeded card, or into another chat), counted
    card by card as (conversation, dedupe key), so that one card lost and another sent twice do not cancel out."""
    want, got = Counter(seeded), Counter(delivered)
    return len(want - got), (got - want).total()


def problems(run: dict[str, Any]) -> list[str]:
    """What makes a run's figures worthless: cards lost or sent twice, Teams' limits broken, a process failing."""
    where = f"{run['database']}, {plural(run['tenants'], 'tenant')}, {plural(run['processes'], 'process')}"
    found = [f"{where}: {plural(run[k], 'card')} {k}" for k in ("lost", "duplicated") if run[k]]
    if run["violations"]:  # Teams would have throttled these (429), and keeps throttling an app that goes on
        examples = "; ".join(run.get("violation_examples", [])[:2])
        found.append(f"{where}: {plural(run['violations'], 'request')} over Teams' limits (e.g. {examples})")
    if any(run["exit_codes"]):
        found.append(f"{where}: exit codes {run['exit_codes']}: {run['errors']}")
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=("both", "postgresql", "sqlite"), default="both")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tenant-rate", type=float, help="NURTURE_TENANT_RATE (default: the product's)")
    parser.add_argument("--scale", type=float, default=1.0, help="a share of each shape's cards, for a quick look")
    args = parser.parse_args()
    baseline = is_baseline(parser, args)
    begin("delivery", baseline)
    databases = ("postgresql", "sqlite") if args.database == "both" else (args.database,)
    rows = [
        await run_once(database, tenants, max(10, round(cards * args.scale)), processes, args.tenant_rate)
        for database in databases
        for tenants, cards in DELIVERY_SHAPES
        for processes in args.processes
    ]
    header = (
        "database",
        "tenants",
        "procs",
        "msgs",
        "seconds",
        "sent/s",
        "ceiling",
        "ratio",
        "cpu ms",
        "db ms",
        "viol",
        "lost",
        "dup",
    )
    widths = (10, 7, 5, 6, 7, 7, 7, 6, 6, 6, 4, 4, 4)
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print(
            f"{r['database']:>10} {r['tenants']:>7} {r['processes']:>5} {r['messages']:>6} {r['wall_seconds']:>7} "
            f"{r['rate_per_second']:>7} "
            f"{r['ceiling_per_second']:>7} {r['rate_over_ceiling']:>6} {r['deliver_cpu_ms_per_send']:>6} "
            f"{r.get('server_cpu_ms_per_send', '-'):>6} {r['violations']:>4} {r['lost']:>4} {r['duplicated']:>4}"
        )
    for database, (tenants, _) in itertools.product(databases, DELIVERY_SHAPES):
        rates = {
            r["processes"]: r["rate_per_second"] for r in rows if (r["database"], r["tenants"]) == (database, tenants)
        }
        if 1 in rates and len(rates) > 1:
            most = max(rates)
            gain = rates[most] / rates[1]
            print(f"{database}, {plural(tenants, 'tenant')}: {most} processes vs 1: {gain:.2f}x the send rate")
    await finish(
        "delivery", rows, [p for r in rows for p in problems(r)], baseline=baseline, connector_round_trip_ms=[50, 150]
    )


if __name__ == "__main__":
    asyncio.run(main())
