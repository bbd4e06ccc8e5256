"""Benchmarks: each prints its ratios and writes bench/results/<name>.json (see docs/performance.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def merged_runs(file: Path, runs: list[dict[str, Any]], first: str) -> list[dict[str, Any]]:
    """This run's figures and, for the databases it did not run, the last run's: running one database keeps the
    other's figures. `first` names the database listed first."""
    ran = {run["database"] for run in runs}
    kept = [run for run in json.loads(file.read_text())["runs"] if run["database"] not in ran] if file.exists() else []
    return sorted(kept + runs, key=lambda run: run["database"] != first)
