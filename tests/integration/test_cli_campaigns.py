"""The usage and campaign commands as a user runs them (ingest, targets, run-campaigns, report), on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.campaigns_file import load_campaigns
from storage.models import CampaignTouch, OutboxMessage, Tenant
from tests.support.activities import OTHER_TENANT, TENANT, USER
from tests.support.cli import nurture
from tests.support.inspect import rows_of
from tests.support.usage import rollups

DEV = {"NURTURE_DEV_MODE": "1"}  # any tenant may send usage (no allow-list in dev mode)


async def test_demo_data_makes_targets_show_every_campaign(database_url: str) -> None:
    code, _, err = await nurture(database_url, "demo", **DEV)
    assert code == 0, err
    code, out, err = await nurture(database_url, "targets", "--json", **DEV)
    assert code == 0, err
    plan = json.loads(out)
    shown = {row["campaign"] for row in plan["targets"]} | {row["campaign"] for row in plan["renewals"]}
    assert shown == {c.id for c in load_campaigns().active}
    for row in plan["targets"]:
        assert row["reason"] and row["outcome"] in {"send", "holdout", "blocked", "deferred"}
        assert (row["outcome"] in {"blocked", "deferred"}) == bool(row["blocked_by"])
    assert {r["reminder"] for r in plan["renewals"]} == {60, 90}

    # nothing was stored by the dry run; run-campaigns queues exactly the "send" rows
    assert await rows_of(database_url, CampaignTouch) == []
    sends = sum(1 for row in plan["targets"] if row["outcome"] == "send")
    held = sum(1 for row in plan["targets"] if row["outcome"] == "holdout")
    code, out, err = await nurture(database_url, "run-campaigns", "--json", **DEV)
    assert code == 0, err
    report = json.loads(out)
    # the plan and the run are minutes apart: the quiet-hours edge could move one person; the totals may not drift far
    assert abs(report["queued"] - sends) <= 1 and abs(report["held_out"] - held) <= 1
    assert report["renewal_alerts"] == 2
    assert len(await rows_of(database_url, OutboxMessage)) == report["queued"]

    code, out, err = await nurture(database_url, "campaigns", "report", "--json", **DEV)
    assert code == 0, err
    rows = json.loads(out)["campaigns"]
    assert {r["campaign"] for r in rows} <= {c.id for c in load_campaigns().active}
    assert all(r["verdict"].startswith("too few") for r in rows)  # windows have not ended yet


async def test_ingest_jsonl_and_csv_with_the_api_checks(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    lines = [
        json.dumps(
            {
                "tenant_id": TENANT,
                "user_id": USER,
                "name": "report_created",
                "timestamp": (now - timedelta(days=d)).isoformat(),
            }
        )
        for d in range(3)
    ]
    lines.insert(1, "{not json")
    lines.insert(2, '{"events": ' + "[" * 5000 + "]" * 5000 + "}")  # as the API would: refused, not a crash
    lines.append(json.dumps({"tenant_id": TENANT, "user_id": USER, "name": "bad name", "timestamp": now.isoformat()}))
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    code, out, err = await nurture(database_url, "ingest", str(jsonl), "--json", **DEV)
    assert code == 1, err  # something was refused
    result = json.loads(out)
    assert (result["accepted"], result["stored"], result["rejected"]) == (3, 3, 3)
    assert [(r["line"], r["reason"][:14]) for r in result["rejections"]] == [
        (2, "not valid JSON"),
        (3, "nested deeper "),
        (6, "name must be 1"),
    ]

    csv_file = tmp_path / "events.csv"
    csv_file.write_text(
        "tenant_id,user_id,name,timestamp\n"
        f"{TENANT},{USER},report_created,{now.isoformat()}\n"  # already imported from the JSONL file
        f"{TENANT},{USER},dashboard_shared,{now.isoformat()}\n",
        encoding="utf-8",
    )
    code, out, err = await nurture(database_url, "ingest", str(csv_file), **DEV)
    assert code == 0, err
    assert "2 accepted (1 new, 1 already known), 0 refused" in out
    assert "ingesting" in err  # the progress bar goes to stderr
    found = await rollups(database_url)
    assert found["features"][(TENANT, USER, "report_created")][0] == 3
    assert found["features"][(TENANT, USER, "dashboard_shared")][0] == 1

    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("tenant,user,event,time\n", encoding="utf-8")
    code, _, err = await nurture(database_url, "ingest", str(bad_header), **DEV)
    assert code == 2 and "CSV header must be tenant_id,user_id,name,timestamp" in err


async def test_ingest_refuses_tenants_outside_the_allow_list(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).isoformat()
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"tenant_id": TENANT, "user_id": USER, "name": "x", "timestamp": now}) + "\n")
    code, out, _ = await nurture(
        database_url, "ingest", str(path), "--json", NURTURE_ALLOWED_TENANTS="22222222-2222-2222-2222-222222222222"
    )
    assert code == 1
    assert "not allowed" in json.loads(out)["rejections"][0]["reason"]
    assert (await rollups(database_url))["profiles"] == {}


async def test_tenant_renewal_command(database_url: str) -> None:
    listed = {"NURTURE_ALLOWED_TENANTS": TENANT}
    code, out, err = await nurture(database_url, "tenant", "renewal", TENANT, "2027-03-31", **listed)
    assert code == 0, err
    assert [(t.tenant_id, str(t.renewal_date)) for t in await rows_of(database_url, Tenant)] == [(TENANT, "2027-03-31")]
    code, _, err = await nurture(database_url, "tenant", "renewal", TENANT, "31.03.2027", **listed)
    assert code == 2 and "is not a date" in err
    code, _, err = await nurture(database_url, "tenant", "renewal", TENANT, "--clear", **listed)
    assert code == 0, err
    assert [t.renewal_date for t in await rows_of(database_url, Tenant)] == [None]


@pytest.mark.parametrize(
    "command",
    [
        ["tenant", "renewal", OTHER_TENANT, "2027-03-31"],
        ["tenant", "name", OTHER_TENANT, "Fabrikam"],
        ["csm", "assign", OTHER_TENANT, "dddddddd-0000-0000-0000-00000000c5a1"],
    ],
)
async def test_commands_that_store_a_tenant_refuse_one_outside_the_allow_list(
    database_url: str, command: list[str]
) -> None:
    """Each would create the tenant, which CSMs would then be told about, while nothing from it is ever accepted."""
    for env in ({"NURTURE_ALLOWED_TENANTS": TENANT}, {}):  # another tenant listed; none (the server refuses all)
        code, _, err = await nurture(database_url, *command, **env)
        assert code == 1
        assert "not allowed" in err and "NURTURE_ALLOWED_TENANTS" in err
    assert await rows_of(database_url, Tenant) == []


async def test_tenant_renewal_for_any_tenant_when_all_are_allowed(database_url: str) -> None:
    code, _, err = await nurture(
        database_url, "tenant", "renewal", OTHER_TENANT, "2027-03-31", NURTURE_ALLOWED_TENANTS="*"
    )
    assert code == 0, err


async def test_a_bad_campaigns_file_stops_the_commands_with_its_reason(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text("campaigns:\n  - {id: a, kind: adoption, milestone: x, within_days: -1}\n")
    for command in (["targets"], ["run-campaigns"], ["serve", "--port", "0"]):
        code, _, err = await nurture(database_url, *command, NURTURE_CAMPAIGNS=str(path), **DEV)
        assert code == 2
        where = "campaigns[0] (id a).within_days"
        assert err.strip() == f"nurture: campaigns file {path}: {where}: Input should be greater than or equal to 1"
