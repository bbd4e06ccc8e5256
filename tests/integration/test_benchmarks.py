"""The benchmarks under bench/ at a small size, on both databases: they still run, and what they check besides speed
holds — both targeting sides choose the same people, every NPS answer is written, no card is lost or sent twice,
every usage batch is stored. Speed is never asserted here (`make bench` measures it, docs/performance.md keeps it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import delivery, inbound, ingestion, targeting
from tests.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("database", BACKENDS)


async def test_targeting_chooses_what_the_duckdb_query_chooses(database: str, tmp_path: Path) -> None:
    now = targeting.bench_now()
    counts = targeting.generate(tmp_path, 3_000, now)
    run = await targeting.run_database(database, tmp_path, 3_000, now, pairs=2)
    assert counts["people"] == 3_000 and counts["daily"] > 3_000 * 10
    assert run["same_targets"] is True  # in both pairs
    assert len(run["pairs"]) == 2 and run["time_ratio"] > 0
    assert 1_000 < run["nurture"]["targets"] == run["duckdb"]["targets"] < 3_000  # some people, not everyone
    assert run["nurture"]["peak_rss_mb"] > 0 and run["duckdb"]["peak_rss_mb"] > 0


async def test_inbound_writes_every_answer_and_answers_every_request(database: str) -> None:
    run = await inbound.run_database(database, rate=50, seconds=2, rounds=1, saturation=200)
    assert run["nps_answers_written"] == run["nps_answers_expected"] == 100 + 100 + 200  # warm-up, load, saturation
    for path in ("echo", "nps"):
        for phase in ("fixed_load", "saturation"):
            figures = run[path][phase]
            assert figures["statuses"] == {"200": figures["requests"]}, (path, phase, figures["statuses"])
        assert run[path]["fixed_load"]["server_cpu_ms_per_request"] > 0
    assert set(run["ratios"]) == {
        "p50_nps_over_echo",
        "p99_nps_over_echo",
        "cpu_per_request_nps_over_echo",
        "saturation_echo_over_nps",
    }


async def test_delivery_loses_and_repeats_nothing_with_two_processes(database: str) -> None:
    run = await delivery.run_once(database, 120, 2, processes=2, workers=2, tenant_rate=50, tenants_per_worker=None)
    assert run["exit_codes"] == [0, 0], run["errors"]
    assert run["lost"] == 0 and run["duplicated"] == 0
    assert run["rate_per_second"] > 0 and run["ceiling_per_second"] == 100


async def test_ingestion_stores_every_event_of_both_sides(database: str) -> None:
    run = await ingestion.run(database, batches=1)  # the API side asserts each batch was stored whole
    assert run["events"] == ingestion.BATCH
    assert run["api_events_per_second"] > 0 and run["raw_insert_rows_per_second"] > 0
