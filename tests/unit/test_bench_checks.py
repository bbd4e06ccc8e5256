"""The benchmarks' verdicts and workload, without a database: a check that cannot fail would be no check, and a
workload that drifted back to one shape would flatter the code again."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import bench
from bench import CheckFailed, begin, delivery, enforce, finish, inbound, ingestion, is_baseline, targeting
from bench.workloads import people, tenant_sizes, usage_batches


def test_checks_that_fail_a_run() -> None:
    """Each benchmark's verdict on a run with something wrong in it (the figures are made up; no database used)."""
    base = {"database": "sqlite", "tenants": 4, "processes": 2, "lost": 0, "duplicated": 0, "violations": 0}
    assert delivery.problems(base | {"exit_codes": [0, 0]}) == []
    assert delivery.problems(base | {"exit_codes": [0, 0], "duplicated": 3})[0].endswith("3 cards duplicated")
    assert "exit codes" in delivery.problems(base | {"exit_codes": [0, 1], "errors": ["boom"]})[0]
    run = {"database": "sqlite", "runs_with_other_targets": 1, "nurture": {"targets": 10}}
    assert "different people" in targeting.problems(run)[0]
    run = {"database": "sqlite", "statuses": {"200": 9, "500": 1}, "answers_expected": 5, "answers_as_sent": 4}
    run |= {"answers_stored": 5, "signals_as_expected": 1, "alerts_as_expected": 1}
    run |= {"signals_expected": 5, "signals_stored": 5, "alerts_expected": 2, "alerts_stored": 2}
    assert len(inbound.problems(run)) == 2
    fine = run | {"statuses": {"200": 10}, "answers_as_sent": 5}
    assert inbound.problems(fine) == []
    assert "detractor alerts" in inbound.problems(fine | {"alerts_as_expected": 0, "alerts_stored": 1})[0]
    assert "usage signals" in inbound.problems(fine | {"signals_as_expected": 0})[0]


def test_delivery_counts_cards_by_their_key_not_by_conversation() -> None:
    """One card lost and another of the same chat sent twice: the chat got its count, but both are wrong."""
    seeded = [("a:1", "a:1:0"), ("a:1", "a:1:1"), ("a:2", "a:2:0")]
    assert delivery.lost_and_duplicated(seeded, list(seeded)) == (0, 0)
    assert delivery.lost_and_duplicated(seeded, [seeded[0], seeded[0], seeded[2]]) == (1, 1)
    assert delivery.lost_and_duplicated(seeded, [*seeded, ("a:1", None)]) == (0, 1)
    assert delivery.lost_and_duplicated(seeded, [seeded[0], seeded[1], ("a:1", "a:2:0")]) == (1, 1)  # wrong chat


def test_ingestion_checks_each_rollup_row_not_only_the_totals() -> None:
    """A count moved to the wrong feature keeps every total right; the row-by-row check still sees it."""
    sent = [
        {"tenant_id": "t", "user_id": "p", "name": "export", "timestamp": "2026-12-01T09:00:00+00:00"},
        {"tenant_id": "t", "user_id": "p", "name": "export", "timestamp": "2026-12-01T09:00:00+00:00"},  # resent
        {"tenant_id": "t", "user_id": "p", "name": "app_opened", "timestamp": "2026-12-03T10:00:00+00:00"},
    ]
    want = ingestion.expected_state(sent)
    assert len(want["usage_events"]) == 2 and want["tenant_usage_daily"][("t", date(2026, 12, 1))] == (1, 1)
    day = (date(2026, 12, 3) - date(1970, 1, 1)).days
    assert want["usage_profiles"][("t", "p")][3] == day // 62  # the newest active-day word
    assert ingestion.state_problems(want, want) == []
    export = want["usage_features"][("t", "p", "export")]
    lumped = {**want, "usage_features": {("t", "p", "app_opened"): (2, *export[1:])}}
    found = ingestion.state_problems(want, lumped)
    assert found == [found[0]] and found[0].startswith("usage_features: 1 rows missing, 0 not expected, 1 wrong")


def test_a_failed_check_ends_the_run_with_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    enforce([], "x")  # nothing wrong: the run goes on
    with pytest.raises(CheckFailed) as ended:
        enforce(["sqlite: 2 lost"], "delivery")
    assert ended.value.code == 1
    assert "delivery: CHECK FAILED: sqlite: 2 lost" in capsys.readouterr().err


def test_a_failed_run_keeps_its_figures_marked_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The results file of a failed run says which checks failed, and the run still ends with status 1."""
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    with pytest.raises(CheckFailed):
        asyncio.run(finish("delivery", [{"violations": 2}], ["sqlite, 1 tenant: 2 requests over Teams' limits"]))
    written = json.loads((tmp_path / "delivery.json").read_text())
    assert written["failed_checks"] == ["sqlite, 1 tenant: 2 requests over Teams' limits"]
    assert written["runs"] == [{"violations": 2}] and written["machine"]["cpus"] and written["date"]
    assert len(written["source"]["commit"]) == 40
    asyncio.run(finish("delivery", [{"violations": 0}], []))  # a pass: no exit
    assert json.loads((tmp_path / "delivery.json").read_text())["failed_checks"] == []


def test_a_trial_run_leaves_the_baseline_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run with other options than the defaults writes <name>.trial.json; a baseline run first removes the old
    baseline, so that a crash cannot leave it behind as if it were the new one's."""
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    assert is_baseline(parser, parser.parse_args([]))
    assert not is_baseline(parser, parser.parse_args(["--scale", "0.1"]))
    (tmp_path / "delivery.json").write_text("{}")
    begin("delivery", baseline=False)
    asyncio.run(finish("delivery", [{"violations": 0}], [], baseline=False))
    assert (tmp_path / "delivery.json").read_text() == "{}" and (tmp_path / "delivery.trial.json").exists()
    begin("delivery", baseline=True)
    assert not (tmp_path / "delivery.json").exists()


def test_the_workload_is_shaped_like_customers() -> None:
    """Zipf-sized tenants, installs over years, mixed zones and behaviours, distinct people in each usage batch."""
    sizes = tenant_sizes(1_000_000)
    assert len(sizes) == 2_000 and sum(sizes) == 1_000_000
    assert sizes[0] > 100_000 and sizes[-1] < 100  # a few large, a long tail
    now = datetime.now(UTC)
    crowd = list(people(5_000, now))
    years = {(now - p.installed_at).days // 365 for p in crowd}
    assert years == {0, 1, 2}
    assert len({p.time_zone for p in crowd}) >= 12 and len({p.behaviour.name for p in crowd}) == 6
    [batch] = list(usage_batches(1, 2_000, now, population=10_000))
    assert len({e["user_id"] for e in batch}) == 2_000 and len({e["name"] for e in batch}) >= 10
