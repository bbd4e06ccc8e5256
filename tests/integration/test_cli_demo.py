"""`nurture db upgrade` and `nurture demo` as a user runs them, on both databases."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.cli import clean_env
from tests.support.database import row_counts


def _nurture(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(NURTURE_DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=120)


async def test_demo_loads_data_and_is_idempotent(database_url: str) -> None:
    upgraded = _nurture(database_url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    first = _nurture(database_url, "demo", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"tenants": 3, "users": 36, "events": 612}
    assert _nurture(database_url, "demo", "--json").returncode == 0
    counts = await row_counts(database_url)
    assert counts["tenants"] == 3 and counts["users"] == 36
