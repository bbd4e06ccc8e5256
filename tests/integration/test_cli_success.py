"""The customer-success commands (health, run-alerts, alerts, csm, tenant name) as a user runs them, both databases."""

from __future__ import annotations

import json

import pytest

from storage.models import CsmAssignment, Tenant
from tests.support.activities import CSM, TENANT
from tests.support.cli import nurture
from tests.support.inspect import rows_of

DEV = {"NURTURE_DEV_MODE": "1", "NURTURE_CSM_IDS": CSM}


async def test_demo_health_alerts_and_their_commands(database_url: str) -> None:
    assert (await nurture(database_url, "demo", **DEV))[0] == 0
    code, out, err = await nurture(database_url, "health", "--json", **DEV)
    assert code == 0, err
    tenants = {t["name"]: t for t in json.loads(out)["tenants"]}
    assert set(tenants) == {"Contoso Pharma", "Fabrikam Retail", "Northwind Logistics"}
    fading = tenants["Northwind Logistics"]
    assert fading["at_risk"] and fading["arrow"] == "↓"
    assert fading["reasons"][0] == "no activity in the last 28 days"
    assert sum(c["contribution"] for c in fading["components"]) == pytest.approx(fading["score"], abs=0.3)
    assert not tenants["Contoso Pharma"]["at_risk"]

    assert (await nurture(database_url, "run-campaigns", **DEV))[0] == 0  # queues the renewal reminders
    code, out, err = await nurture(database_url, "run-alerts", "--json", **DEV)
    assert code == 0, err
    report = json.loads(out)
    assert report["raised"] == {"at_risk": 1, "renewal": 2}
    assert report["undeliverable"]  # the CSM never opened a chat with the bot: said, not hidden
    code, out, _ = await nurture(database_url, "alerts", "--json", **DEV)
    alerts = json.loads(out)["alerts"]
    assert sorted(a["kind"] for a in alerts) == ["at_risk", "renewal", "renewal"]
    assert all(a["log"][0]["action"] == "raised" for a in alerts)
    # a second run raises nothing new, and says so in words
    code, out, _ = await nurture(database_url, "run-alerts", "--json", **DEV)
    assert json.loads(out)["raised"] == {}
    code, out, _ = await nurture(database_url, "run-alerts", **DEV)
    assert code == 0 and "3 tenants scored; raised nothing; escalated 0" in out


async def test_run_alerts_counts_what_it_raised_in_words(database_url: str) -> None:
    assert (await nurture(database_url, "demo", **DEV))[0] == 0
    assert (await nurture(database_url, "run-campaigns", **DEV))[0] == 0
    code, out, err = await nurture(database_url, "run-alerts", **DEV)
    assert code == 0, err
    assert "3 tenants scored; raised 2 renewal, 1 at_risk; escalated 0" in " ".join(out.split())


async def test_recall_refuses_a_kind_no_message_has(database_url: str) -> None:
    assert (await nurture(database_url, "demo", **DEV))[0] == 0
    code, out, err = await nurture(database_url, "recall", "low-usage", **DEV)  # a campaign id, not a kind
    assert code == 1 and out == ""
    assert err.strip() == (
        "nurture: no messages are of kind 'low-usage': one of nps, onboarding, adoption, milestone, legacy, "
        "reengagement, renewal, alert, digest"
    )
    code, out, err = await nurture(database_url, "recall", "legacy", "--json", **DEV)
    assert code == 0 and json.loads(out) == {"cancelled": 0, "recalls_queued": 0}, err


async def test_csm_assignment_and_tenant_names(database_url: str) -> None:
    listed = {"NURTURE_ALLOWED_TENANTS": TENANT}  # a tenant is named or assigned once it may use the bot
    code, out, err = await nurture(database_url, "csm", "assign", TENANT, CSM, "--position", "1", **listed)
    assert code == 0, err
    assert [(a.tenant_id, a.aad_object_id, a.position) for a in await rows_of(database_url, CsmAssignment)] == [
        (TENANT, CSM, 1)
    ]
    code, _, err = await nurture(database_url, "csm", "assign", "not a guid", CSM)
    assert code == 2 and "must be a GUID" in err
    code, out, err = await nurture(database_url, "tenant", "name", TENANT, "  Contoso   Pharma ", **listed)
    assert code == 0, err
    assert [t.display_name for t in await rows_of(database_url, Tenant)] == ["Contoso Pharma"]
    code, _, err = await nurture(database_url, "tenant", "name", TENANT, "x" * 201, **listed)
    assert code == 2 and "1 to 200 characters" in err
    assert (await nurture(database_url, "csm", "unassign", TENANT, CSM))[0] == 0
    code, _, err = await nurture(database_url, "csm", "unassign", TENANT, CSM)
    assert code == 1 and "was not assigned" in err
