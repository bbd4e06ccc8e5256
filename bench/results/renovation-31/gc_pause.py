"""How long a full collection takes in a process that built the web app as `nurture serve` does.

Run from the repository's root: `.venv/bin/python bench/results/renovation-31/gc_pause.py freeze` (start-up's
objects frozen, as `serve` does) and `... none` (not frozen). Issue #31's figures: docs/performance.md.
"""

import asyncio
import gc
import os
import sys
import time

os.environ.setdefault("NURTURE_DEV_MODE", "1")
os.environ.setdefault("NURTURE_DATABASE_URL", "sqlite+aiosqlite:////tmp/gcpause.db")
from bot.app import create_app
from bot.config import Settings

freeze = sys.argv[1] == "freeze"


async def main():
    _app = create_app(Settings())  # kept alive: what start-up built is what a collection walks
    gc.collect()
    if freeze:
        gc.freeze()
    times = []
    for _ in range(5):
        started = time.perf_counter()
        gc.collect()
        times.append(time.perf_counter() - started)
    print(
        ("freeze" if freeze else "no freeze"),
        "objects tracked",
        len(gc.get_objects()),
        "frozen",
        gc.get_freeze_count(),
        "full collection ms",
        [round(t * 1000, 1) for t in times],
    )


asyncio.run(main())
