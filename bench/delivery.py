"""Delivery benchmark: proactive cards over several tenants against the fake Teams connector that enforces Teams'
limits (per conversation, and 50 requests/s per tenant), with 1 and 3 `nurture deliver` processes.

Prints, side by side, the achieved send rate as a fraction of the connector's ceiling (tenants x 50/s), limit
violations, and messages lost or sent twice; writes bench/results/delivery.json. A benchmark, not a test: it never
fails on speed. Each NURTURE_TENANT_RATE given runs with 1 and with 3 processes; by default the product's default
(45/s, at most 0.90 of the ceiling by design) and 50/s, Teams' limit, which the send log keeps to in every second
whatever the delays (bot.engagement.delivery.send_window). Run: `python -m bench.delivery [--messages 10000]
[--tenants 4] [--database postgresql|sqlite] [--tenant-rate 45 50]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.engagement.delivery import TEAMS_TENANT_LIMIT
from storage.migrate import upgrade
from tests.support.cli import clean_env
from tests.support.connector import FakeConnector
from tests.support.database import create_postgres_database, drop_postgres_database
from tests.support.seed import seed_outbox

RESULTS = Path(__file__).parent / "results"


async def run_once(
    database: str,
    messages: int,
    tenants: int,
    processes: int,
    workers: int,
    tenant_rate: float,
    tenants_per_worker: int | None,
) -> dict[str, Any]:
    connector = FakeConnector(enforce_limits=True, tenant_rate=TEAMS_TENANT_LIMIT, keep_bodies=False)
    await connector.start()
    work = Path(tempfile.mkdtemp(prefix="nurture-bench-"))
    url = (
        f"sqlite+aiosqlite:///{work / 'bench.db'}"
        if database == "sqlite"
        else create_postgres_database("nurture_bench")
    )
    try:
        upgrade(url)
        tenant_ids = [f"{t:08d}-0000-0000-0000-000000000000" for t in range(tenants)]
        conversations = await seed_outbox(url, connector.service_url, tenant_ids, messages // tenants)
        # the fake connector stands in for Teams and stamps arrival times: its own full garbage collections (75–100 ms
        # measured in this process) would bunch those stamps into violations Teams would not see
        gc.collect()
        gc.freeze()
        env = clean_env(
            NURTURE_DATABASE_URL=url,
            NURTURE_DEV_MODE="1",
            NURTURE_LOG_LEVEL="WARNING",
            NURTURE_TENANT_RATE=str(tenant_rate),
            **({"NURTURE_TENANTS_PER_WORKER": str(tenants_per_worker)} if tenants_per_worker else {}),
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        crew = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "deliver", "--once", "--quiet", "--workers", str(workers),
                env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(processes)
        ]  # fmt: skip
        errors = [(await p.communicate())[1].decode()[-300:] for p in crew]
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the `nurture deliver` processes, start-up included
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        stamps = sorted(t for per_tenant in connector._per_tenant.values() for t in per_tenant)
        # each tenant's own rate, first request to last: shows whether time went to the sends or around them
        per_tenant = {
            tenant[:8]: round((len(times) - 1) / (times[-1] - times[0]), 2)
            for tenant, times in connector._per_tenant.items()
            if len(times) > 1
        }
        starts = [min(times) - stamps[0] for times in connector._per_tenant.values() if times]
        ends = [stamps[-1] - max(times) for times in connector._per_tenant.values() if times]
        sending = stamps[-1] - stamps[0] if len(stamps) > 1 else wall
        delivered = [connector.delivered_to(c) for c in conversations]
        ceiling = tenants * TEAMS_TENANT_LIMIT
        return {
            "database": database,
            "processes": processes,
            "workers_per_process": workers,
            "messages": messages,
            "tenants": tenants,
            "tenant_rate_setting": tenant_rate,
            "tenants_per_worker_setting": tenants_per_worker,
            "ceiling_per_second": ceiling,
            "sending_seconds": round(sending, 2),
            "wall_seconds_with_startup": round(wall, 2),
            "rate_per_second": round(messages / sending, 1),
            "rate_over_ceiling": round(messages / sending / ceiling, 3),
            "per_tenant_rate": per_tenant,
            "latest_tenant_start_seconds": round(max(starts, default=0.0), 3),
            "earliest_tenant_end_seconds": round(max(ends, default=0.0), 3),
            "deliver_cpu_ms_per_send": round(cpu * 1000 / messages, 2),
            "violations": len(connector.violations),
            "violation_examples": connector.violations[:5],
            "lost": sum(1 for d in delivered if d == 0),
            "duplicated": sum(1 for d in delivered if d > 1),
            "exit_codes": [p.returncode for p in crew],
            "errors": [e for e, p in zip(errors, crew, strict=True) if p.returncode],
        }
    finally:
        gc.unfreeze()
        await connector.close()
        if database != "sqlite":
            drop_postgres_database(url)
        shutil.rmtree(work, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--workers", type=int, default=2, help="delivery workers per process")
    parser.add_argument(
        "--tenant-rate",
        type=float,
        nargs="+",
        default=[45.0, float(TEAMS_TENANT_LIMIT)],
        help="NURTURE_TENANT_RATE values to run (default: the product's default, and Teams' limit itself)",
    )
    parser.add_argument("--tenants-per-worker", type=int, help="NURTURE_TENANTS_PER_WORKER (default: the product's)")
    args = parser.parse_args()
    rows = [
        await run_once(args.database, args.messages, args.tenants, n, args.workers, rate, args.tenants_per_worker)
        for rate in args.tenant_rate
        for n in (1, 3)
    ]
    header = ("rate", "most", "processes", "msgs", "sent/s", "ceiling", "ratio", "violations", "lost", "dup")
    widths = (5, 5, 9, 6, 8, 8, 6, 10, 5, 4)
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for r in rows:
        most = r["tenant_rate_setting"] / TEAMS_TENANT_LIMIT  # what the setting allows, by design
        print(
            f"{r['tenant_rate_setting']:>5g} {most:>5.3f} {r['processes']:>9} {r['messages']:>6} "
            f"{r['rate_per_second']:>8} {r['ceiling_per_second']:>8} {r['rate_over_ceiling']:>6} "
            f"{r['violations']:>10} {r['lost']:>5} {r['duplicated']:>4}"
        )
    for rate in args.tenant_rate:
        one, three = (r["rate_per_second"] for r in rows if r["tenant_rate_setting"] == rate)
        print(f"NURTURE_TENANT_RATE={rate:g}: 3 processes vs 1: {three / one:.2f}x the send rate")
    RESULTS.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    (RESULTS / "delivery.json").write_text(json.dumps({"machine": machine, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
