"""Targeting, before and after a change: Nurture's side of bench.targeting from several checkouts, taking turns.

The data (1,000,000 people by default) is generated and loaded once per database; then each checkout's
`python -m bench.targeting nurture` runs against it in turn, ROUNDS times. Every run must pick the same
(person, campaign) pairs. Used for issue #31's before/after figures (docs/performance.md); run from the repository's
root, e.g. `.venv/bin/python bench/results/renovation-31/targeting_turns.py /tmp/before,/tmp/after 3`, where each
folder is a `git worktree` of the commit to measure.
"""

import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.getcwd())
from bench.server import PostgresServer  # noqa: E402
from bench.targeting import bench_now, generate, load_postgres, load_sqlite  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.support.database import create_postgres_database, drop_postgres_database  # noqa: E402

CHECKOUTS = sys.argv[1].split(",")
ROUNDS = int(sys.argv[2])
USERS = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
DATABASES = sys.argv[4].split(",") if len(sys.argv) > 4 else ["postgresql", "sqlite"]


async def one(checkout, url, now, out, server):
    env = dict(os.environ, PYTHONPATH=checkout)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.targeting",
        "nurture",
        "--database",
        url,
        "--now",
        now.isoformat(),
        "--out",
        str(out),
        cwd=checkout,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    if server is None:
        output, _ = await process.communicate()
        return json.loads(output)
    with server.watch() as watch:
        output, _ = await process.communicate()
    figures = json.loads(output)
    figures["server_cpu_seconds"] = round(watch.cpu, 2)
    figures["server_extra_mb"] = round(watch.peak_mb - watch.before_mb, 1)
    return figures


async def main():
    now = bench_now()
    results = {}
    with tempfile.TemporaryDirectory(prefix="turns-") as folder:
        folder = Path(folder)
        print(generate(folder, USERS, now), flush=True)
        for database in DATABASES:
            sqlite = database == "sqlite"
            url = f"sqlite+aiosqlite:///{folder / 'bench.db'}" if sqlite else create_postgres_database("nurture_ab")
            server = None if sqlite else PostgresServer()
            try:
                upgrade(url)
                load_sqlite(url, folder, now) if sqlite else await load_postgres(url, folder, now)
                picked = set()
                for _ in range(ROUNDS):
                    for checkout in CHECKOUTS:
                        out = folder / f"{Path(checkout).name}.json"
                        figures = await one(checkout, url, now, out, server)
                        results.setdefault(database, {}).setdefault(checkout, []).append(figures)
                        picked.add(out.read_text())
                        print(database, checkout, figures, flush=True)
                results.setdefault("same", {})[database] = len(picked) == 1
                print(database, "same targets in every run:", len(picked) == 1, flush=True)
            finally:
                if not sqlite:
                    drop_postgres_database(url)
                (folder / "bench.db").unlink(missing_ok=True)
    for database in DATABASES:
        for checkout, runs in results[database].items():
            seconds = statistics.median(r["seconds"] for r in runs)
            cpu = statistics.median(r["cpu_seconds"] + r.get("server_cpu_seconds", 0) for r in runs)
            print(f"{database:10} {checkout:14} seconds {seconds:6.2f}  CPU (client + server) {cpu:6.2f}")
    print(json.dumps(results))


asyncio.run(main())
