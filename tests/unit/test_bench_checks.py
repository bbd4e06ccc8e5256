"""The benchmarks' verdicts and workload, without a database: a check that cannot fail would be no check, and a
workload that drifted back to one shape would flatter the code again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bench
from bench import CheckFailed, delivery, enforce, finish, inbound, targeting
from bench.workloads import people, tenant_sizes, usage_batches


def test_checks_that_fail_a_run() -> None:
    """Each benchmark's verdict on a run with something wrong in it (the figures are made up; no database used)."""
    base = {"database": "sqlite", "tenants": 4, "processes": 2, "lost": 0, "duplicated": 0, "violations": 0}
    assert delivery.problems(base | {"exit_codes": [0, 0]}) == []
    assert delivery.problems(base | {"exit_codes": [0, 0], "duplicated": 3})[0].endswith("3 duplicated")
    assert "exit codes" in delivery.problems(base | {"exit_codes": [0, 1], "errors": ["boom"]})[0]
    run = {"database": "sqlite", "runs_with_other_targets": 1, "nurture": {"targets": 10}}
    assert "different people" in targeting.problems(run)[0]
    run = {"database": "sqlite", "statuses": {"200": 9, "500": 1}, "answers_expected": 5, "answers_as_sent": 4}
    assert len(inbound.problems(run | {"answers_stored": 5})) == 2


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
        finish("delivery", [{"violations": 2}], ["postgresql 1 tenant: 2 violations"])
    written = json.loads((tmp_path / "delivery.json").read_text())
    assert written["failed_checks"] == ["postgresql 1 tenant: 2 violations"]
    assert written["runs"] == [{"violations": 2}] and written["machine"]["cpus"] and written["date"]
    finish("delivery", [{"violations": 0}], [])  # a pass: no exit
    assert json.loads((tmp_path / "delivery.json").read_text())["failed_checks"] == []


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
