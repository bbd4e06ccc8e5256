"""Benchmarks: each measures a workload from bench/workloads.py, prints its figures side by side, writes
bench/results/<name>.json (one run, dated, with its machine and the checks that failed) and fails (exit 1) when any
of its correctness checks fails."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

RESULTS = Path(__file__).parent / "results"


class CheckFailed(SystemExit):
    """A benchmark whose correctness checks failed ends with exit status 1, so no one mistakes its figures for good."""


def begin(name: str, baseline: bool) -> None:
    """A baseline run first removes the results it will replace, so that a run that crashes leaves none behind to
    be mistaken for its own."""
    if baseline:
        (RESULTS / f"{name}.json").unlink(missing_ok=True)


def is_baseline(parser: argparse.ArgumentParser, args: argparse.Namespace) -> bool:
    """Whether every option has its default: only such a run is the baseline docs/performance.md quotes."""
    return all(value == parser.get_default(option) for option, value in vars(args).items() if option != "command")


async def finish(
    name: str, runs: list[dict[str, Any]], problems: list[str], *, baseline: bool = True, **about: Any
) -> Path:
    """Write this run's results, failed checks included, then end with exit status 1 if any check failed.

    The figures of a failed run are kept because they show what the product does today; `failed_checks` says why
    they are not a pass. A run with other options than the defaults (a smaller size, one database) is a trial: it
    goes to bench/results/<name>.trial.json, which git ignores, and leaves the baseline alone."""
    if any(run.get("database") == "postgresql" for run in runs):
        from bench.server import describe_postgres  # only runs on PostgreSQL need the driver

        try:
            about["postgresql"] = await describe_postgres()
        except (OSError, asyncpg.PostgresError) as gone:  # the figures are worth keeping all the same
            about["postgresql"] = {"unknown": str(gone)}
    file = write_results(name, runs, trial=not baseline, failed_checks=problems, **about)
    print(f"{name}: results in {file.relative_to(RESULTS.parent.parent)}" + ("" if baseline else " (a trial run)"))
    enforce(problems, name)
    return file


def enforce(problems: list[str], name: str) -> None:
    """End the run with exit status 1 when a correctness check failed."""
    if problems:
        for problem in problems:
            print(f"{name}: CHECK FAILED: {problem}", file=sys.stderr)
        raise CheckFailed(1)


def write_results(name: str, runs: list[dict[str, Any]], trial: bool = False, **about: Any) -> Path:
    """bench/results/<name>.json (or <name>.trial.json) holds this run only: when and where it ran, the command,
    the code, and its figures."""
    RESULTS.mkdir(exist_ok=True)
    file = RESULTS / (f"{name}.trial.json" if trial else f"{name}.json")
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m", f"bench.{name}", *sys.argv[1:]]),
        "machine": machine(),
        "source": source(),
        **about,
        "runs": runs,
    }
    file.write_text(json.dumps(result, indent=2) + "\n")
    return file


def source() -> dict[str, Any]:
    """Which code ran: the commit, and whether the working tree had changes on top of it."""
    root = Path(__file__).parent.parent

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        except OSError:  # no git here
            return "unknown"
        return done.stdout.strip() if done.returncode == 0 else "unknown"

    # the results files themselves change with every run: they are not code
    changes = git("status", "--porcelain", "--", ".", ":(exclude)bench/results")
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": changes != "" if changes != "unknown" else None}


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line), ""
        )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
