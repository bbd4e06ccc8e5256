"""The benchmarks under bench/ at a small size, on both databases: they still run, their correctness checks pass on
honest runs, and those checks do fail when something is wrong. Speed is never asserted here (`make bench` measures
it, docs/performance.md keeps it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import delivery, inbound, ingestion, targeting
from storage.migrate import upgrade
from tests.conftest import BACKENDS
from tests.support.database import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.parametrize("database", BACKENDS)


async def test_targeting_matches_what_the_duckdb_query_matches(database: str, tmp_path: Path) -> None:
    now = targeting.bench_now()
    counts = targeting.generate(tmp_path, 3_000, now)
    run = await targeting.run_database(database, tmp_path, 3_000, now, pairs=2)
    assert counts["people"] == 3_000 and counts["daily"] > 3_000 * 10 and counts["tenants"] == 6
    assert targeting.problems(run) == [] and run["runs_with_other_targets"] == 0
    assert len(run["pairs"]) == 2 and run["time_ratio"] > 0 and run["cpu_ratio"] > 0
    assert 1_000 < run["nurture"]["targets"] == run["duckdb"]["targets"] < 3_000  # some people, not everyone
    outcomes = run["nurture"]["outcomes"]
    assert outcomes["send"] > 0 and outcomes["blocked"] > 0  # people in quiet hours or at their weekend somewhere
    assert run["nurture"]["peak_rss_mb"] > 0 and run["duckdb"]["peak_rss_mb"] > 0
    assert ("server_cpu_seconds" in run["nurture"]) == (database == "postgresql")


async def test_inbound_answers_every_request_and_stores_what_was_sent(database: str) -> None:
    run = await inbound.run_database(database, rate=50, seconds=2, rounds=1, saturation=100)
    assert inbound.problems(run) == []
    # per path: 100 warm-up, 100 at the fixed rate, 100 saturated; the edit and comment paths answered first
    assert run["answers_expected"] == run["answers_as_sent"] == 4 * 300
    assert run["signals_as_expected"] and run["signals_stored"] == 4 * 300  # one a person who answered
    assert run["alerts_as_expected"] and 0 < run["alerts_stored"] < 4 * 300
    assert sum(run["statuses"].values()) == run["statuses"]["200"] == 5 * 300 + 2 * 300
    assert set(run["ratios"]) == {"answer", "answer_comment", "edit", "comment"}
    for path in inbound.PATHS:
        assert run[path]["fixed_load"]["server_cpu_ms_per_request"] > 0
    database_cpu = sum(run[path]["fixed_load"]["database_cpu_ms_per_request"] for path in inbound.PATHS)
    assert (database_cpu > 0) == (database == "postgresql")


async def test_delivery_loses_repeats_and_oversends_nothing_with_two_processes(database: str) -> None:
    run = await delivery.run_once(database, tenants=2, cards_per_tenant=40, processes=2, tenant_rate=50)
    assert delivery.problems(run) == [], run
    assert run["messages"] == 80 and run["cards_per_conversation"] == 10
    assert run["rate_per_second"] > 0 and run["ceiling_per_second"] == 100


async def test_ingestion_stores_every_event_and_its_rollups(database: str) -> None:
    run = await ingestion.run(database, batches=1)
    assert run["problems"] == []
    assert run["events"] == run["stored_by_api"] == ingestion.BATCH
    # 10,000 people's days, then the untimed busy people's: up to three days each for 2,000 of them
    assert 10_000 < run["active_days_checked"] < 16_000
    assert all(rate > 0 for rate in run["events_per_second"].values())


async def test_the_ingestion_check_fails_when_rows_are_missing(database: str, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}" if database == "sqlite" else create_postgres_database("b")
    sent = [
        {"tenant_id": "t1", "user_id": "p1", "name": "export", "timestamp": "2026-12-01T09:00:00+00:00"},
        {"tenant_id": "t1", "user_id": "p1", "name": "export", "timestamp": "2026-12-02T09:00:00+00:00"},
    ]
    try:
        upgrade(url)
        found = ingestion.state_problems(ingestion.expected_state(sent), await ingestion.stored_state(url))
    finally:
        if database != "sqlite":
            drop_postgres_database(url)
    assert [p.split(":")[0] for p in found] == [
        "usage_features", "usage_profiles", "usage_activity", "tenant_usage_daily", "usage_events",
    ]  # fmt: skip
    assert found[0].startswith("usage_features: 1 rows missing, 0 not expected, 0 wrong of 1")
