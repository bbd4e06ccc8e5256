"""POST /api/usage/events through the real app on both databases: tokens, bad bodies and events, dedupe, rollups."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse
from sqlalchemy import text

from storage.engine import create_engine, session_factory
from storage.uow import UnitOfWork
from tests.conftest import INGEST_TOKEN, Harness
from tests.support.activities import OTHER_TENANT, TENANT, USER
from tests.support.cli import nurture
from tests.support.usage import event, rollups

OTHER_USER = "aaaaaaaa-0000-0000-0000-000000000002"
AUTH = {"Authorization": f"Bearer {INGEST_TOKEN}"}


async def post_events(harness: Harness, events: list[dict[str, Any]], headers: dict[str, str] = AUTH) -> ClientResponse:
    return await harness.client.post("/api/usage/events", json={"events": events}, headers=headers)


async def test_a_batch_is_stored_and_folded_into_daily_rollups(harness: Harness) -> None:
    batch = [
        event("report_created", "2026-11-23T09:00:00+00:00"),
        event("report_created", "2026-11-23T11:00:00+00:00"),
        event("dashboard_shared", "2026-11-23T12:00:00+00:00"),
        event("report_created", "2026-11-24T08:00:00+00:00"),
        event("report_created", "2026-11-24T08:30:00+00:00", user=OTHER_USER, properties={"size": 3}),
    ]
    response = await post_events(harness, batch)
    assert response.status == 202
    assert await response.json() == {"accepted": 5, "stored": 5, "duplicates": 0, "rejected": 0, "rejections": []}

    found = await rollups(harness.database_url)
    d23, d24 = date(2026, 11, 23), date(2026, 11, 24)
    # the days each person was active (how many events: usage_profiles and, per event, usage_features)
    assert found["active"] == {(TENANT, USER, d23), (TENANT, USER, d24), (TENANT, OTHER_USER, d24)}
    assert found["features"][(TENANT, USER, "report_created")] == (
        3,
        datetime(2026, 11, 23, 9, tzinfo=UTC),
        datetime(2026, 11, 24, 8, tzinfo=UTC),
    )
    assert found["profiles"][(TENANT, USER)] == (
        4,
        datetime(2026, 11, 23, 9, tzinfo=UTC),
        datetime(2026, 11, 24, 8, tzinfo=UTC),
    )
    # per tenant: people active that day and events that day
    assert found["tenant_days"] == {(TENANT, d23): (1, 3), (TENANT, d24): (2, 2)}


async def test_duplicates_in_a_batch_and_across_batches_count_once(harness: Harness) -> None:
    same = event("report_created", "2026-11-24T09:00:00+00:00")
    first = await post_events(harness, [same, dict(same), event("export", "2026-11-24T09:05:00+00:00")])
    assert (await first.json())["stored"] == 2
    assert (await first.json())["duplicates"] == 1
    before = await rollups(harness.database_url)

    # the same instant written with another offset is the same event
    again = event("report_created", "2026-11-24T10:00:00+01:00")
    replay = await post_events(harness, [same, again, event("export", "2026-11-24T09:05:00Z")])
    assert await replay.json() == {"accepted": 3, "stored": 0, "duplicates": 3, "rejected": 0, "rejections": []}
    assert await rollups(harness.database_url) == before
    assert before["tenant_days"] == {(TENANT, date(2026, 11, 24)): (1, 2)}


async def test_the_day_is_the_one_of_the_offset_sent(harness: Harness) -> None:
    """23:30 in New York on the 23rd is the 24th in UTC; the person was active on their 23rd."""
    late = event("report_created", "2026-11-23T23:30:00-05:00")
    early = event("report_created", "2026-11-24T00:30:00+09:00")  # Tokyo, the 23rd 15:30 UTC
    assert (await post_events(harness, [late, early])).status == 202
    found = await rollups(harness.database_url)
    assert found["active"] == {(TENANT, USER, date(2026, 11, 23)), (TENANT, USER, date(2026, 11, 24))}
    assert found["tenant_days"] == {(TENANT, date(2026, 11, 23)): (1, 1), (TENANT, date(2026, 11, 24)): (1, 1)}


BAD_EVENTS: dict[str, tuple[Any, str]] = {
    "not an object": ("report_created", "must be a JSON object"),
    "missing tenant": ({"user_id": USER, "name": "x", "timestamp": "2026-11-24T09:00:00Z"}, "tenant_id"),
    "tenant not a GUID": (event(tenant="x y"), "tenant_id"),
    "overlong user": (event(user="a" * 65), "user_id"),
    "name with spaces": (event("report created"), "name"),
    "empty name": (event(""), "name"),
    "reserved name": (event("teams.installed"), "reserved"),
    "naive timestamp": (event(at="2026-11-24T09:00:00"), "UTC offset"),
    "not a date": (event(at="yesterday"), "ISO 8601"),
    "number timestamp": ({**event(), "timestamp": 1732438800}, "ISO 8601"),
    "future": (event(at="2026-11-24T11:00:00Z"), "future"),
    "too old": (event(at="2024-01-01T00:00:00Z"), "older than"),
    "properties not object": (event(properties=[1, 2]), "properties"),
    "properties too big": (event(properties={"x": "y" * 5000}), "properties larger"),
    "unknown field": (event(email="someone@contoso.com"), "unknown field"),
    "tenant not allowed": (event(tenant=OTHER_TENANT), "not allowed"),
}


@pytest.mark.parametrize("case", BAD_EVENTS, ids=list(BAD_EVENTS))
async def test_a_bad_event_is_refused_with_its_reason_and_the_rest_stored(harness: Harness, case: str) -> None:
    bad, reason = BAD_EVENTS[case]
    good = event("report_created", "2026-11-24T09:00:00Z")
    response = await post_events(harness, [good, bad])
    assert response.status == 202
    body = await response.json()
    assert body["accepted"] == 1
    assert body["stored"] == 1
    assert body["rejected"] == 1
    assert body["rejections"][0]["index"] == 1
    assert reason in body["rejections"][0]["reason"]
    rows = await harness.rows()
    assert rows["usage_events"] == 1


BAD_BODIES: dict[str, tuple[bytes, str, int]] = {
    "not json": (b"{events: nope", "application/json", 400),
    "events missing": (b'{"evts": []}', "application/json", 400),
    "events not a list": (b'{"events": {"a": 1}}', "application/json", 400),
    "a list at the top": (b"[]", "application/json", 400),
    "wrong content type": (b'{"events": []}', "text/plain", 415),
    "over the byte limit": (b'{"events": [' + b'"x",' * (2 * 1024 * 1024) + b'"x"]}', "application/json", 413),
}


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
async def test_an_unreadable_body_is_refused_whole_and_stores_nothing(harness: Harness, case: str) -> None:
    body, content_type, status = BAD_BODIES[case]
    response = await harness.client.post("/api/usage/events", data=body, headers={**AUTH, "Content-Type": content_type})
    assert response.status == status
    assert (await response.json())["error"]
    assert sum((await harness.rows()).values()) == 0


async def test_more_than_ten_thousand_events_is_refused_whole(harness: Harness) -> None:
    batch = [event("report_created", f"2026-11-24T09:00:{i % 60:02d}.{i:06d}+00:00") for i in range(10_001)]
    response = await post_events(harness, batch)
    assert response.status == 413
    assert "10000" in (await response.json())["error"]
    assert sum((await harness.rows()).values()) == 0


def expected_rollups(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The rollups worked out from the distinct events by hand: the oracle both storage paths must agree with."""
    distinct = {(e["user_id"], e["name"], datetime.fromisoformat(e["timestamp"])) for e in events}
    daily: dict[Any, int] = {}
    features: dict[Any, tuple[int, datetime, datetime]] = {}
    profiles: dict[Any, tuple[int, datetime, datetime]] = {}
    for user, name, at in distinct:
        daily[(TENANT, user, at.date())] = daily.get((TENANT, user, at.date()), 0) + 1
        for table, key in ((features, (TENANT, user, name)), (profiles, (TENANT, user))):
            n, first, last = table.get(key, (0, at, at))
            table[key] = (n + 1, min(first, at), max(last, at))
    tenant_days: dict[Any, tuple[int, int]] = {}
    for (_, _, day), count in daily.items():
        people, total = tenant_days.get((TENANT, day), (0, 0))
        tenant_days[(TENANT, day)] = (people + 1, total + count)
    return {"active": set(daily), "features": features, "profiles": profiles, "tenant_days": tenant_days}


async def test_the_bots_small_batches_and_the_apis_large_ones_fold_alike(harness: Harness) -> None:
    """Up to 8 events are folded row by row, larger batches in SQL: two rounds that overlap (duplicates, days and
    features seen before, earlier and later moments) give exactly the rollups worked out by hand."""

    def round_of(people: list[str], shift: int) -> list[dict[str, Any]]:
        return [
            event(name, f"2026-11-{20 + (i + shift) % 3}T{8 + i:02d}:{shift:02d}:00+00:00", user=person)
            for person in people
            for i, name in enumerate(("report_created", "export", "report_created", "dashboard_shared"))
        ]

    small_people = [f"small-{i}" for i in range(3)]
    bulk_people = [f"bulk-{i}" for i in range(6)]
    sent: list[dict[str, Any]] = []
    for shift, duplicates in ((0, 0), (1, 0), (0, 24)):  # the third round repeats the first
        for person in small_people:  # 4 events per post: the bot's row-by-row path
            batch = round_of([person], shift)
            assert (await post_events(harness, batch)).status == 202
            sent += batch
        bulk = round_of(bulk_people, shift)  # 24 events in one post: the set-based path
        response = await post_events(harness, bulk)
        assert response.status == 202
        assert (await response.json())["duplicates"] == duplicates
        sent += bulk
    assert await rollups(harness.database_url) == expected_rollups(sent)


async def test_active_days_are_read_back_from_the_stored_words(harness: Harness) -> None:
    """Active days over 130 days (three 62-day words) come back as the same days, from the first day asked for on."""
    newest = harness.clock.now.date()
    since = newest - timedelta(days=129)
    days_back = {USER: [0, 1, 2, 61, 62, 63, 123, 124, 129, 130, 140], OTHER_USER: [5]}
    batch = [
        event("report_created", f"{newest - timedelta(days=back)}T09:00:00+00:00", user=user)
        for user, backs in days_back.items()
        for back in backs
    ]
    assert (await post_events(harness, batch)).status == 202
    engine = create_engine(harness.database_url)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:
            found = await uow.usage.active_days(TENANT, since)
    finally:
        await engine.dispose()
    expected = {user: {newest - timedelta(days=b) for b in backs if b <= 129} for user, backs in days_back.items()}
    assert found == expected


async def test_ten_thousand_events_are_one_batch(harness: Harness) -> None:
    batch = [
        event("report_created", f"2026-11-{20 + i % 4}T09:{i % 60:02d}:00+00:00", user=f"user-{i % 500:04d}")
        for i in range(10_000)
    ]
    response = await post_events(harness, batch)
    body = await response.json()
    assert response.status == 202
    # 500 users x 4 days x 60 distinct minutes = 120,000 slots; i % 60 and i % 4 and i % 500 collide
    distinct = {(e["user_id"], e["timestamp"]) for e in batch}
    assert body["stored"] == len(distinct)
    assert body["duplicates"] == 10_000 - len(distinct)
    found = await rollups(harness.database_url)
    assert found["active"] == {(TENANT, e["user_id"], date.fromisoformat(e["timestamp"][:10])) for e in batch}
    assert sum(events for _, events in found["tenant_days"].values()) == len(distinct)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": INGEST_TOKEN}, {"Authorization": "Basic abc"}],
    ids=["missing", "wrong", "no scheme", "basic"],
)
async def test_the_endpoint_refuses_a_missing_or_wrong_token(harness: Harness, headers: dict[str, str]) -> None:
    response = await post_events(harness, [event()], headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "token" in (await response.json())["error"]
    assert sum((await harness.rows()).values()) == 0


async def test_concurrent_overlapping_batches_store_each_event_once(harness: Harness) -> None:
    """Four batches at once share half their events, and each also brings a day of its own into the same stored
    word of every person: the rollups count every event, and every person's day, exactly once."""
    people = [f"user-{i:03d}" for i in range(40)]
    batches = []
    for b in range(4):
        batch = [event("report_created", f"2026-11-24T09:{m:02d}:00Z", user=p) for p in people for m in range(5)]
        batch += [event(f"feature_{b}", "2026-11-24T09:30:00Z", user=p) for p in people]
        batch += [event("report_created", f"2026-11-{20 + b}T10:00:00Z", user=p) for p in people]
        batches.append(batch)
    responses = await asyncio.gather(*(post_events(harness, batch) for batch in batches))
    bodies = [await r.json() for r in responses]
    assert all(r.status == 202 for r in responses), bodies
    assert sum(b["stored"] for b in bodies) == 40 * 5 + 4 * 40 + 4 * 40
    found = await rollups(harness.database_url)
    own_days = {(TENANT, date(2026, 11, 20 + b)): (40, 40) for b in range(4)}
    assert found["tenant_days"] == {(TENANT, date(2026, 11, 24)): (40, 40 * 5 + 4 * 40), **own_days}
    days = {date(2026, 11, d) for d in (20, 21, 22, 23, 24)}
    assert found["active"] == {(TENANT, p, d) for p in people for d in days}


async def test_renewal_dates_are_set_and_cleared_over_the_api(harness: Harness) -> None:
    url = f"/api/tenants/{TENANT}/renewal"
    response = await harness.client.put(url, json={"renewal_date": "2027-02-28"}, headers=AUTH)
    assert response.status == 200
    assert await response.json() == {"tenant_id": TENANT, "renewal_date": "2027-02-28"}
    bad = await harness.client.put(url, json={"renewal_date": "28/02/2027"}, headers=AUTH)
    assert bad.status == 400
    assert "not a date" in (await bad.json())["error"]
    refused = await harness.client.put(url, json={"renewal_date": "2027-02-28"})
    assert refused.status == 401
    cleared = await harness.client.put(
        url, data=json.dumps({"renewal_date": None}), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert await cleared.json() == {"tenant_id": TENANT, "renewal_date": None}


async def test_a_renewal_for_a_tenant_outside_the_allow_list_is_refused_and_stores_nothing(harness: Harness) -> None:
    for tenant, renewal in ((OTHER_TENANT, "2027-02-28"), (OTHER_TENANT.upper(), None)):
        body = {"renewal_date": renewal}
        response = await harness.client.put(f"/api/tenants/{tenant}/renewal", json=body, headers=AUTH)
        assert response.status == 403
        assert "not allowed" in (await response.json())["error"]
    assert sum((await harness.rows()).values()) == 0

    upper = f"/api/tenants/{TENANT.upper()}/renewal"
    listed = await harness.client.put(upper, json={"renewal_date": None}, headers=AUTH)
    assert listed.status == 200  # the list is compared without regard to case


async def test_profiles_keep_a_true_copy_of_the_newest_words_in_any_order(harness: Harness) -> None:
    """Events over 400 days (seven 62-day words) arrive out of order, in small and large batches, some at once: each
    profile's four newest words stay what usage_activity holds (rollups checks it), whether a batch brings a newer
    word (the frame moves), one inside the frame, or one too old for it."""
    rng = random.Random(7)
    newest = harness.clock.now.date()
    people = [f"user-{i:03d}" for i in range(12)]
    days = [(person, newest - timedelta(days=rng.randrange(400))) for person in people for _ in range(25)]
    rng.shuffle(days)
    batches: list[list[dict[str, Any]]] = []
    while days:
        size = rng.choice([1, 3, 8, 30, 60])
        batches.append([event("report_created", f"{d}T09:00:00+00:00", user=p) for p, d in days[:size]])
        days = days[size:]
    for start in range(0, len(batches), 4):
        responses = await asyncio.gather(*(post_events(harness, batch) for batch in batches[start : start + 4]))
        assert all(r.status == 202 for r in responses)
    found = await rollups(harness.database_url)  # asserts every profile's words against usage_activity
    assert {aad for _, aad in found["profiles"]} == set(people)


async def _execute(database_url: str, *statements: str) -> list[Any]:
    """Statements run as something other than Nurture would (an old version, a hand edit); the last one's rows."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            result = None
            for statement in statements:
                result = await connection.execute(text(statement))
            return list(result.all()) if result is not None and result.returns_rows else []
    finally:
        await engine.dispose()


async def test_profiles_that_drifted_from_usage_activity_are_found_and_repaired(harness: Harness) -> None:
    """Something that writes usage_activity but not the profiles' copy of the newest words (a version from before
    migration 0013 left running, a hand edit) makes campaigns read stale windows: `nurture usage verify` names those
    people and exits 1, `--repair` copies usage_activity's words in, and later folds keep the two alike."""
    url = harness.database_url
    newest = harness.clock.now.date()
    people = [f"user-{i}" for i in range(6)]
    batch = [event(at=f"{newest - timedelta(days=d)}T09:00:00+00:00", user=p) for p in people for d in (0, 3, 70, 150)]
    assert (await post_events(harness, batch)).status == 202
    code, out, err = await nurture(url, "usage", "verify", "--json")
    assert (code, json.loads(out)["drifted"]) == (0, 0), err

    person = "tenant_id = '{tenant}' AND aad_object_id = '{{user}}'".format(tenant=TENANT)
    [(top,)] = await _execute(url, f"SELECT max(word) FROM usage_activity WHERE {person.format(user='user-0')}")
    await _execute(
        url,
        f"INSERT INTO usage_activity (tenant_id, aad_object_id, word, bits, added) VALUES ('{TENANT}', 'user-0', "
        f"{top + 1}, 1, 1)",  # a newer word the profile never saw
        f"UPDATE usage_activity SET bits = bits | 4 WHERE {person.format(user='user-1')} AND word = {top}",
        f"UPDATE usage_profiles SET recent_1 = 0 WHERE {person.format(user='user-2')}",
        f"DELETE FROM usage_activity WHERE {person.format(user='user-3')}",
    )
    code, out, err = await nurture(url, "usage", "verify", "--json")
    found = json.loads(out)
    assert code == 1, err
    assert found["drifted"] == 4 and found["repaired"] == 0
    assert [p["user"] for p in found["people"]] == ["user-0", "user-1", "user-2", "user-3"]
    code, out, err = await nurture(url, "usage", "verify")
    assert code == 1 and "4 usage profile(s) differ" in out, err

    code, out, err = await nurture(url, "usage", "verify", "--repair", "--json")
    assert code == 0, err
    assert json.loads(out)["repaired"] == 4
    await rollups(url)  # asserts every profile's words against usage_activity
    code, out, err = await nurture(url, "usage", "verify")
    assert code == 0 and "every usage profile" in out, err
    later = [event(at=f"{newest}T15:00:00+00:00", user=p) for p in ("user-0", "user-3")]
    assert (await post_events(harness, later)).status == 202
    await rollups(url)


async def test_a_repair_holds_folds_back_until_it_commits(harness: Harness) -> None:
    """What the repair reads stays true until it writes: a batch folded meanwhile waits for it (both databases)."""
    first = harness.clock.now.date() - timedelta(days=1)
    assert (await post_events(harness, [event(at=f"{first}T09:00:00+00:00")])).status == 202
    engine = create_engine(harness.database_url)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:
            assert await uow.usage.repair_profiles() == []
            fold = asyncio.create_task(post_events(harness, [event(at=f"{first + timedelta(days=1)}T09:00:00+00:00")]))
            await asyncio.sleep(0.5)
            assert not fold.done()
            await uow.commit()
        assert (await fold).status == 202
    finally:
        await engine.dispose()
    found = await rollups(harness.database_url)
    assert {day for _, _, day in found["active"]} == {first, first + timedelta(days=1)}
