"""Forgetting a person removes every row about them from every table; retention blanks and deletes old data."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from bot.app import ALERTS, SESSIONS
from bot.engagement import usage
from bot.engagement.asking import AskPolicy
from bot.engagement.budget import AttentionBudget
from bot.usecases.privacy import Retention, purge
from storage.engine import create_engine
from storage.models import (
    Alert,
    AlertLog,
    Base,
    CampaignTouch,
    InboundActivity,
    NpsAnswer,
    NpsAnswerHistory,
    OutboxMessage,
    SurveyInstance,
    Tenant,
    UsageEvent,
    UsageProfile,
    User,
)
from storage.people import UserProfile
from storage.uow import UnitOfWork
from tests.conftest import Harness
from tests.e2e.test_campaigns import campaigns, install_user
from tests.e2e.test_nps_flow import OTHER, ask, invoke, post_invoke, submit, table
from tests.e2e.test_usage_ingest import AUTH, post_events
from tests.support.activities import CSM, OTHER_TENANT, TENANT, USER, install, message
from tests.support.cli import clean_env, nurture
from tests.support.usage import event


async def _traces_of(database_url: str, aad: str, user_ids: set[int]) -> list[str]:
    """Every cell in every table that holds the person's AAD id or points at one of their user rows."""
    engine = create_engine(database_url)
    found = []
    try:
        async with engine.connect() as connection:
            for model_table in Base.metadata.sorted_tables:
                rows = (await connection.execute(select(model_table))).mappings().all()
                user_fks = {fk.parent.name for fk in model_table.foreign_keys if fk.column.table.name == "users"}
                for row in rows:
                    for column, value in row.items():
                        if isinstance(value, str) and aad in value:
                            found.append(f"{model_table.name}.{column}")
                        if column in user_fks and value in user_ids:
                            found.append(f"{model_table.name}.{column} → users.id {value}")
                        if model_table.name == "users" and column == "id" and value in user_ids:
                            found.append(f"users.id {value}")
    finally:
        await engine.dispose()
    return found


async def _a_full_history(harness: Harness, aad: str) -> None:
    """Install, a message, an answered detractor survey with a comment and an edit (history), a pending alert,
    usage from the vendor's API, a campaign message and a "stop these" click, and a renewal date for the tenant.
    """
    instance = await ask(harness, aad=aad)
    await harness.post(message("help", service_url=harness.connector.service_url, aad_object_id=aad))
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "8", "Fine"), aad=aad))
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "2", "Actually bad"), aad=aad))
    assert (await post_events(harness, [event("report_created", harness.clock(), user=aad)])).status == 202
    roomy = AskPolicy(budget=AttentionBudget(10, 3, 40, 30))
    runner = campaigns(
        harness, "campaigns: [{id: tips, kind: onboarding, days: [0]}, {id: renewal, kind: renewal}]", roomy
    )
    await harness.client.put(f"/api/tenants/{TENANT}/renewal", json={"renewal_date": "2027-01-20"}, headers=AUTH)
    await runner.run(harness.clock())
    touch = next(t for t in await table(harness, CampaignTouch) if t.aad_object_id == aad)
    await post_invoke(harness, invoke(harness, "nurture.stop", {"touch": touch.id}, aad=aad))


async def _csm_handles_the_alerts(harness: Harness) -> None:
    """A CSM assigned to the tenant gets the detractor alerts, claims one and logs outreach (alerts, their log)."""
    await install_user(harness, CSM)
    async with UnitOfWork(harness.app[SESSIONS]) as work:
        await work.alerts.assign(TENANT, CSM, 0)
        await work.commit()
    await harness.app[ALERTS].run(harness.clock())
    await harness.deliver()
    for alert in await table(harness, Alert):
        await post_invoke(harness, invoke(harness, "alert.claim", {"alert": alert.id}, aad=CSM))
        await post_invoke(harness, invoke(harness, "alert.note", {"alert": alert.id, "note": "Called"}, aad=CSM))


async def test_delete_my_data_leaves_no_trace_in_any_table(harness: Harness) -> None:
    await _a_full_history(harness, USER)
    await _a_full_history(harness, OTHER)
    await _csm_handles_the_alerts(harness)
    user_ids = {u.id for u in await table(harness, User) if u.aad_object_id == USER}
    before = await harness.rows()
    assert all(before[name] > 0 for name in before), before  # every table holds something to delete
    assert await _traces_of(harness.database_url, USER, user_ids)

    response = await harness.post(message("delete my data", service_url=harness.connector.service_url))
    assert response.status == 200

    assert await _traces_of(harness.database_url, USER, user_ids) == []
    other_ids = {u.id for u in await table(harness, User)}
    assert other_ids and await _traces_of(harness.database_url, OTHER, other_ids)  # the other person is intact
    after = await harness.rows()
    assert after["nps_answers"] == 1 and after["nps_answer_history"] == 1
    assert after["pending_alerts"] == 2  # the other person's detractor alert and the tenant's renewal reminder


async def test_forgetting_a_csm_removes_their_name_from_alerts_and_cards(harness: Harness) -> None:
    await _a_full_history(harness, USER)
    await _csm_handles_the_alerts(harness)
    csm_ids = {u.id for u in await table(harness, User) if u.aad_object_id == CSM}
    assert await _traces_of(harness.database_url, CSM, csm_ids)
    code, out, err = await nurture(harness.database_url, "forget", CSM, "--json")
    assert code == 0, err
    assert await _traces_of(harness.database_url, CSM, csm_ids) == []
    alerts = await table(harness, Alert)
    assert {a.kind for a in alerts} == {"detractor", "renewal"}
    assert all(a.claimed_by is None and a.status == "claimed" for a in alerts)  # they stay, without who handled them
    assert [e.note for e in await table(harness, AlertLog) if e.action == "note"] == ["Called", "Called"]


async def test_nurture_forget_command(harness: Harness) -> None:
    await _a_full_history(harness, USER)
    await _a_full_history(harness, OTHER)
    user_ids = {u.id for u in await table(harness, User) if u.aad_object_id == USER}
    touches = [t for t in await table(harness, CampaignTouch) if t.aad_object_id == USER]
    theirs = {  # rows that hang off the person's user row: the report counts them too
        "outbox": len([m for m in await table(harness, OutboxMessage) if m.user_id in user_ids]),
        "survey_instances": len([i for i in await table(harness, SurveyInstance) if i.user_id in user_ids]),
        "nps_answer_history": len(await table(harness, NpsAnswerHistory)) // 2,  # one edit each, two people
        "campaign_optouts": 1,  # the "stop these" click
    }
    code, out, err = await nurture(harness.database_url, "forget", USER, "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    assert report["deleted"]["users"] == 1 and report["deleted"]["nps_answers"] == 1
    assert touches and report["deleted"]["campaign_touches"] == len(touches)
    assert all(theirs.values()) and {k: report["deleted"][k] for k in theirs} == theirs
    assert await _traces_of(harness.database_url, USER, user_ids) == []
    assert (await harness.rows())["users"] == 1


async def test_an_id_in_upper_case_is_the_same_person_and_forget_finds_them(harness: Harness) -> None:
    """Entra ids are GUIDs, which are case-insensitive. A person whose activities, card answers and usage arrive
    with their ids in upper case is the one person stored in lower case; `nurture forget` with the id in upper case
    forgets every row; forgetting an id nothing is stored about says so and exits 1."""
    shouting, tenant = USER.upper(), TENANT.upper()
    chat = {"service_url": harness.connector.service_url, "conversation_id": f"a:personal-{USER}"}  # the one chat
    assert (await harness.post(install("add", aad_object_id=shouting, tenant_id=tenant, **chat))).status == 200
    instance = await ask(harness, aad=USER)  # installs again, in lower case: the same person
    answer = invoke(harness, "nps.submit", submit(instance, "3", "Slow"), aad=shouting)
    answer["conversation"]["id"] = chat["conversation_id"]
    await post_invoke(harness, answer)
    response = await harness.post(message("help", aad_object_id=shouting, tenant_id=tenant, **chat))
    assert response.status == 200
    assert (await post_events(harness, [event("report_created", harness.clock(), user=shouting)])).status == 202
    assert [(u.tenant_id, u.aad_object_id) for u in await table(harness, User)] == [(TENANT, USER)]
    assert [(a.aad_object_id, a.score) for a in await table(harness, NpsAnswer)] == [(USER, 3)]
    assert {t.tenant_id for t in await table(harness, Tenant)} == {TENANT}
    user_ids = {u.id for u in await table(harness, User)}
    assert await _traces_of(harness.database_url, shouting, set()) == []  # nothing stored in upper case …
    assert await _traces_of(harness.database_url, USER, user_ids)  # … all of it in lower case

    code, out, err = await nurture(harness.database_url, "forget", shouting, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["forgotten"], report["found"], report["deleted"]["users"]) == (USER, True, 1)
    assert await _traces_of(harness.database_url, USER, user_ids) == []

    code, out, err = await nurture(harness.database_url, "forget", shouting)
    assert code == 1 and f"nothing is stored about {USER}" in err
    code, out, err = await nurture(harness.database_url, "forget", "not an id!")
    assert code == 2 and "must be a GUID" in err


async def test_forget_finds_rows_an_upgrade_left_in_upper_case(harness: Harness) -> None:
    """Migration 0019 leaves a row in upper case when the same person also had it in lower case (merging two
    histories is not a migration's decision): `nurture forget` deletes both spellings."""
    await _a_full_history(harness, USER)
    shouting = USER.upper()
    async with UnitOfWork(harness.app[SESSIONS]) as uow:  # what an upgrade from before 0019 can leave behind
        await uow.users.upsert(UserProfile(TENANT, shouting, "en-US", "UTC"), harness.clock())
        await uow.usage.record([usage.bot_signal(TENANT, USER, "teams.message", harness.clock())], harness.clock())
        await uow.session.execute(
            update(UsageProfile).where(UsageProfile.aad_object_id == USER).values(aad_object_id=shouting)
        )
        await uow.commit()
    assert {u.aad_object_id for u in await table(harness, User)} >= {USER, shouting}
    code, out, err = await nurture(harness.database_url, "forget", USER, "--json")
    assert code == 0, err
    assert json.loads(out)["deleted"]["users"] == 2
    everyone = {u.id for u in await table(harness, User)}
    assert await _traces_of(harness.database_url, USER, everyone) == []
    assert await _traces_of(harness.database_url, shouting, set()) == []


async def test_forgetting_reaches_usage_in_tenants_the_bot_never_met(harness: Harness) -> None:
    """Usage can arrive for a tenant the bot has no conversation in (no tenants row, only its daily totals); the
    person's rows there go too, small batches and large alike, and another person's stay."""
    await _a_full_history(harness, USER)
    now = harness.clock()
    unmet = [
        usage.UsageEvent(
            OTHER_TENANT, person, f"feature_{i % 3}", now - timedelta(days=i), (now - timedelta(days=i)).date()
        )
        for person in (USER, OTHER)
        for i in range(12)
    ]
    async with UnitOfWork(harness.app[SESSIONS]) as uow:
        await uow.usage.record(unmet[:3], now)  # the bot's row-by-row path
        await uow.usage.record(unmet[3:], now)  # the set-based path
        await uow.commit()
    assert OTHER_TENANT not in {t.tenant_id for t in await table(harness, Tenant)}
    user_ids = {u.id for u in await table(harness, User) if u.aad_object_id == USER}
    theirs = [e for e in await table(harness, UsageEvent) if e.aad_object_id == USER]
    assert {e.tenant_id for e in theirs} == {TENANT, OTHER_TENANT}
    code, out, err = await nurture(harness.database_url, "forget", USER, "--json")
    assert code == 0, err
    assert json.loads(out)["deleted"]["usage_events"] == len(theirs)
    assert await _traces_of(harness.database_url, USER, user_ids) == []
    assert {(e.tenant_id, e.aad_object_id) for e in await table(harness, UsageEvent)} == {(OTHER_TENANT, OTHER)}


async def test_purge_blanks_old_comments_and_old_activity_log(harness: Harness) -> None:
    await _a_full_history(harness, USER)
    harness.clock.advance(days=400)
    await _a_full_history(harness, OTHER)
    async with harness.surveys().uow_factory() as uow:
        counts = await purge(uow, Retention(comment_days=365, activity_log_days=30), harness.clock())
        await uow.commit()
    # USER's raw usage events (install, message, card answer, one from the API) are past the 30-day dedupe window
    assert counts == {
        "nps_comments_blanked": 1,
        "nps_history_comments_blanked": 1,
        "inbound_activities_deleted": 2,
        "usage_events_deleted": 4,
    }
    assert {e.aad_object_id for e in await table(harness, UsageEvent)} == {OTHER}
    assert USER in {p.aad_object_id for p in await table(harness, UsageProfile)}  # rollups stay
    answers = {a.aad_object_id: a.comment for a in await table(harness, NpsAnswer)}
    assert answers == {USER: None, OTHER: "Actually bad"}
    history = sorted(h.comment or "" for h in await table(harness, NpsAnswerHistory))
    assert history == ["", "Fine"]
    assert {a.aad_object_id for a in await table(harness, InboundActivity)} == {OTHER}


def test_purge_command_reports_what_it_did(tmp_path: Any) -> None:
    env = clean_env(NURTURE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], env=env, capture_output=True, timeout=60, check=True)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "purge", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "nps_comments_blanked": 0,
        "nps_history_comments_blanked": 0,
        "inbound_activities_deleted": 0,
        "usage_events_deleted": 0,
    }
