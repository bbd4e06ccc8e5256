"""The tenant-wide SQL targeting path decides exactly what the rules decide person by person — on both databases.

Generated tenants: people in zones with and without daylight saving (half-hour ones, UTC+14, names that are not
zones), installs and last-seen moments on and around their local midnights, active days across stored-word
boundaries, lifetime feature use, touches for steps the rules would pick (so "already done" and cooldowns bite),
opt-outs, recent sends of every status, people without chats, a tenant without any conversation. Every run is
compared with tests/support/reference_targeting.py, target by target: campaign, step, reason, facts, outcome, gate.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select
from sqlalchemy.dialects import sqlite

import storage.targeting as targeting
from bot.engagement.asking import AskPolicy, quiet_refusal
from bot.engagement.budget import AttentionBudget
from bot.engagement.campaigns import CampaignSet
from bot.engagement.local_days import FOREVER
from bot.engagement.reach import ChatOpening
from bot.engagement.targeting import Outcome, Target
from bot.engagement.usage import WORD_DAYS, UsageEvent, epoch_day
from bot.usecases.audience import Audience
from storage.engine import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import (
    CampaignOptOut,
    CampaignTouch,
    ConversationReference,
    OutboxMessage,
    Tenant,
    UsageActivity,
    UsageFeature,
    UsageProfile,
    User,
)
from storage.sqlite_snapshot import SnapshotReaders
from storage.uow import UnitOfWork
from storage.usage import recent_words
from tests.support.database import empty_all_tables
from tests.support.reference_targeting import reference_targets

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "Australia/Lord_Howe",  # a half-hour daylight saving shift
    "America/Santiago",
    "Not/AZone",  # not a zone: UTC, as local_time treats it
    "",
    None,
]
FIXED_ZONES = ["UTC", "Asia/Kolkata", "Asia/Tokyo", "Not/AZone", "", None]  # one offset all along: no lookups by moment
EVENTS = ["report_created", "dashboard_shared", "export", "app_opened"]
KINDS = ["onboarding", "adoption", "milestone", "legacy", "reengagement"]

CAMPAIGN_SETS: dict[str, dict[str, Any]] = {
    "every kind": {
        "campaigns": [
            {"id": "welcome", "kind": "onboarding", "days": [0, 3, 7, 14], "catch_up_days": 2},
            {
                "id": "first-report",
                "kind": "adoption",
                "milestone": "report_created",
                "within_days": 7,
                "min_active_days": 3,
                "window_days": 14,
                "holdout_percent": 30,
            },
            {
                "id": "milestones",
                "kind": "milestone",
                "event": "report_created",
                "counts": [3, 10],
                "anniversary_days": [30, 90],
                "recent_days": 7,
            },
            {
                "id": "fading",
                "kind": "legacy",
                "window_days": 10,
                "min_drop_percent": 50,
                "min_previous_active_days": 3,
                "key_features": ["dashboard_shared", "export"],
                "unused_after_days": 20,
            },
            {"id": "come-back", "kind": "reengagement", "inactive_days": 12, "cooldown_days": 10},
            {"id": "renewals", "kind": "renewal"},
        ]
    },
    "long windows, other order": {
        "campaigns": [
            {"id": "come-back", "kind": "reengagement", "inactive_days": 40, "cooldown_days": 0},
            {
                "id": "fading",
                "kind": "legacy",
                "window_days": 45,  # the two windows span 90 days: three stored words
                "min_drop_percent": 30,
                "min_previous_active_days": 8,
            },
            {"id": "anniversary", "kind": "milestone", "anniversary_days": [60, 120, 365], "recent_days": 14},
            {
                "id": "nudge",
                "kind": "adoption",
                "milestone": "export",
                "within_days": 1,
                "min_active_days": 10,
                "window_days": 70,
                "max_sends": 3,
                "cooldown_days": 0,
            },
            {"id": "late-tips", "kind": "onboarding", "days": [1, 30, 60], "catch_up_days": 0, "holdout_percent": 50},
        ]
    },
}

MOMENTS = [
    datetime(2026, 11, 24, 10, 0, tzinfo=UTC),  # a Tuesday morning in Europe
    datetime(2026, 11, 28, 13, 0, tzinfo=UTC),  # Saturday
    datetime(2026, 11, 24, 23, 40, tzinfo=UTC),  # the next day already east of UTC+1
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # the night Europe moves its clocks
    datetime(2026, 11, 30, 9, 30, 0, 250_000, tzinfo=UTC),  # Monday, with microseconds
]


def _midnight(day: date, zone: str | None) -> datetime:
    """Local midnight of `day` in `zone` (UTC for a non-zone), as a UTC instant."""
    try:
        tz = ZoneInfo(zone) if zone else UTC
    except (ValueError, KeyError):
        tz = UTC
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def _moment(rng: random.Random, now: datetime, zone: str | None, max_days: int) -> datetime:
    """A moment up to `max_days` ago: often right on, just before or just after a local midnight."""
    day = now.date() - timedelta(days=rng.randrange(0, max_days))
    if rng.random() < 0.4:
        edge = _midnight(day, zone) + rng.choice(
            [timedelta(0), timedelta(microseconds=-1), timedelta(seconds=1), timedelta(seconds=-1)]
        )
        return min(edge, now)
    return min(datetime.combine(day, time(0), UTC) + timedelta(seconds=rng.randrange(86_400)), now)


def _words(days: set[date]) -> dict[int, int]:
    words: dict[int, int] = {}
    for d in days:
        e = epoch_day(d)
        words[e // WORD_DAYS] = words.get(e // WORD_DAYS, 0) | 1 << e % WORD_DAYS
    return words


async def _generate(
    url: str,
    rng: random.Random,
    now: datetime,
    tenants: list[str],
    people: int,
    zones: list[str | None],
    random_ids: bool = False,
) -> None:
    """The tenants' people and everything about them; `random_ids`: AAD object ids as random as Entra's (else
    counted up, sharing their first digits)."""
    rows: dict[Any, list[dict[str, Any]]] = {m: [] for m in (Tenant, User, ConversationReference, UsageActivity)}
    rows |= {m: [] for m in (UsageProfile, UsageFeature, CampaignOptOut, OutboxMessage)}
    user_id = 0
    for t_index, tenant in enumerate(tenants):
        rows[Tenant].append({"tenant_id": tenant, "first_seen_at": now, "last_seen_at": now})
        anchored = t_index == 0  # the second tenant has no live conversation: people without a chat stay out
        if anchored:
            rows[ConversationReference].append(_conversation(f"19:team-{tenant}", tenant, None, "team", now))
        for n in range(people):
            user_id += 1
            if n == 0 or rng.random() >= 0.3:
                seed = rng.random()
            one = random.Random(seed)  # a third of the people are twins of the one before: alike in all but name
            aad = f"{t_index:02d}000000-0000-0000-0000-{n:012d}"
            if random_ids:
                aad = str(uuid.UUID(int=rng.getrandbits(128)))
            zone = one.choice(zones)
            installed = _moment(one, now, zone, 130) if one.random() < 0.9 else None
            rows[User].append(
                {
                    "id": user_id,
                    "tenant_id": tenant,
                    "aad_object_id": aad,
                    "locale": one.choice(["en-US", "de-DE", None]),
                    "time_zone": zone,
                    "installed_at": installed,
                    "uninstalled_at": now if one.random() < 0.05 else None,
                    "opted_out_at": now if one.random() < 0.05 else None,
                    "unreachable_at": now if one.random() < 0.05 else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if one.random() < 0.85:
                removed = now if one.random() < 0.05 else None
                rows[ConversationReference].append(_conversation(f"a:{aad}", tenant, user_id, "personal", now, removed))
            density = one.choice([0.0, 0.05, 0.2, 0.5, 0.9])
            fading = one.random() < 0.3
            days = {
                now.date() - timedelta(days=back)
                for back in range(-1, 200)
                if one.random() < (density / 4 if fading and back < 20 else density)
            }
            words = _words(days)
            for word, bits in words.items():
                rows[UsageActivity].append(
                    {"tenant_id": tenant, "aad_object_id": aad, "word": word, "bits": bits, "added": 0}
                )
            if one.random() < 0.8 or words:  # anyone with activity has a profile (the folds write both)
                first = _moment(one, now, zone, 400)
                last = one.choice([first, _moment(one, now, zone, 60), now - timedelta(days=30), now])
                key = {"tenant_id": tenant, "aad_object_id": aad}
                rows[UsageProfile].append(
                    key
                    | {"first_seen_at": min(first, last), "last_seen_at": max(first, last), "events": 1}
                    | recent_words(words or {0: 0})
                )
            for name in EVENTS:
                if one.random() < 0.35:
                    last = now - timedelta(days=one.choice([0, 6, 7, 8, 13, 14, 15, 30]), seconds=one.randrange(-5, 5))
                    rows[UsageFeature].append(
                        {
                            "tenant_id": tenant,
                            "aad_object_id": aad,
                            "name": name,
                            "total": one.choice([0, 1, 2, 3, 4, 9, 10, 11, 50]),
                            "first_at": last - timedelta(days=one.randrange(0, 60)),
                            "last_at": min(last, now),
                        }
                    )
            for kind in KINDS:
                if one.random() < 0.04:
                    rows[CampaignOptOut].append({"user_id": user_id, "kind": kind, "created_at": now})
            for s in range(one.choice([0, 0, 0, 1, 2, 5])):
                rows[OutboxMessage].append(
                    {
                        "dedupe_key": f"send-{user_id}-{s}",
                        "kind": "nudge",
                        "tenant_id": tenant,
                        "user_id": user_id,
                        "conversation_id": f"a:{aad}",
                        "payload": json.dumps({}),
                        "status": one.choice(["queued", "sending", "sent", "unknown", "failed", "cancelled"]),
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now - timedelta(days=one.choice([0, 1, 2, 3, 4, 29, 30, 31]), minutes=s),
                    }
                )
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for model, values in rows.items():
                if values:
                    await connection.execute(insert(model), values)
    finally:
        await engine.dispose()


def _conversation(
    conversation_id: str, tenant: str, user_id: int | None, scope: str, now: datetime, removed: datetime | None = None
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "tenant_id": tenant,
        "user_id": user_id,
        "scope": scope,
        "channel_id": "msteams",
        "service_url": "https://smba.trafficmanager.net/teams/",
        "bot_id": "28:bot",
        "removed_at": removed,
        "created_at": now,
        "updated_at": now,
    }


async def _touch_some(url: str, rng: random.Random, targets: list[Target], now: datetime) -> int:
    """Record touches for about half of the steps the rules pick, some long ago: done steps and cooldowns bite."""
    rows = []
    for t in targets:
        if rng.random() < 0.5:
            rows.append(
                {
                    "campaign_id": t.campaign_id,
                    "kind": t.kind,
                    "step": t.step if rng.random() < 0.7 else f"{t.step}-earlier",
                    "tenant_id": t.tenant_id,
                    "aad_object_id": t.aad_object_id,
                    "holdout": False,
                    "reason": t.reason[:300],
                    "decided_at": now
                    - timedelta(days=rng.choice([0, 2, 9, 10, 11, 29, 31]), seconds=rng.randrange(-3, 3)),
                }
            )
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            if rows:
                await connection.execute(insert(CampaignTouch), rows)
    finally:
        await engine.dispose()
    return len(rows)


async def _both_ways(
    url: str, tenant: str, campaigns: CampaignSet, policy: AskPolicy, now: datetime, opening: ChatOpening
) -> tuple[list[Target], list[Target]]:
    engine = create_engine(url)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:
            sql = await Audience(campaigns, policy, opening, now).decisions(uow, tenant)
            reference = await reference_targets(uow.session, tenant, campaigns, policy, now, opening)
            people = select(User.aad_object_id, User.id, User.locale).where(User.tenant_id == tenant)
            rows = {aad: (user_id, locale) for aad, user_id, locale in await uow.session.execute(people)}
    finally:
        await engine.dispose()
    # each target names where its card goes: the person's user row and language
    assert [(t.user_id, t.locale) for t in sql] == [rows[t.aad_object_id] for t in sql]
    return sql, reference


def _key(t: Target) -> tuple[str, str, str]:
    return (t.aad_object_id, t.campaign_id, t.step)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("set_name", list(CAMPAIGN_SETS))
@pytest.mark.parametrize("zones", [ZONES, FIXED_ZONES], ids=["zones with daylight saving", "fixed offsets"])
async def test_sql_targeting_decides_like_the_rules_person_by_person(
    database_url: str, seed: int, set_name: str, zones: list[str | None]
) -> None:
    rng = random.Random(f"{seed}-{set_name}-{len(zones)}")
    now = MOMENTS[seed % len(MOMENTS)]
    tenants = ["aaaaaaaa-0000-0000-0000-00000000000a", "bbbbbbbb-0000-0000-0000-00000000000b"]
    await _generate(database_url, rng, now, tenants, people=120, zones=zones)
    campaigns = CampaignSet.model_validate(CAMPAIGN_SETS[set_name])
    policy = rng.choice([AskPolicy(), AskPolicy(skip_weekends=False, budget=AttentionBudget(2, 3, 3, 30))])
    opening = rng.choice([ChatOpening.CREATE, ChatOpening.OFF])

    first, reference = await _both_ways(database_url, tenants[0], campaigns, policy, now, opening)
    assert sorted(first, key=_key) == sorted(reference, key=_key)
    touched = await _touch_some(database_url, rng, reference, now)
    assert touched > 0
    every: list[Target] = []
    for tenant in tenants:
        sql, reference = await _both_ways(database_url, tenant, campaigns, policy, now, opening)
        assert sorted(sql, key=_key) == sorted(reference, key=_key)
        assert sql == reference  # and in the same order: people by their row, campaigns by priority
        every += reference
    engine = create_engine(database_url)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:  # every tenant in one query: the same, tenant by tenant
            audience = Audience(campaigns, policy, opening, now)
            assert await audience.decisions(uow) == every
            groups = await audience.query.run(uow.session)
        # people alike were decided together, each group being people of one tenant
        assert any(len(g.user_ids) > 1 for g in groups)
        assert sorted(u for g in groups for u in g.user_ids) == sorted({u for g in groups for u in g.user_ids})
    finally:
        await engine.dispose()
    # the generated tenants exercise what they are meant to: many matches, gates that block, people who get one
    outcomes = {t.outcome for t in first}
    assert len(first) > 40 and Outcome.BLOCKED in outcomes
    some_zone_awake = any(quiet_refusal(policy, now, zone) is None for zone in zones)
    assert Outcome.SEND in outcomes or not some_zone_awake, outcomes


async def test_profiles_keep_last_use_in_whole_seconds_through_every_write(database_url: str) -> None:
    """usage_profiles.last_seen_second, which the audience query reads, is worked out by the database on every write
    of a profile: new and updated, by the row-by-row fold and the set-based one, with a later instant (it moves) and
    an earlier one (it stays); the fraction is dropped, never rounded up into the next second or day."""
    await empty_all_tables(database_url)
    tenant = "aaaaaaaa-0000-0000-0000-00000000000a"
    last = {
        "u-small": datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "u-bulk": datetime(2026, 3, 29, 0, 59, 59, 500000, tzinfo=UTC),
        "u-both": datetime(2026, 11, 30, 10, 0, 0, 1, tzinfo=UTC),
    }

    def used(person: str, at: datetime, name: str = "report_created") -> UsageEvent:
        return UsageEvent(tenant, person, name, at, at.date())

    earlier = {person: at - timedelta(days=3, microseconds=1) for person, at in last.items()}
    batches = [
        [used("u-small", earlier["u-small"]), used("u-both", earlier["u-both"])],  # row by row: new profiles
        [used("u-bulk", earlier["u-bulk"] + timedelta(minutes=i)) for i in range(12)],  # set-based: a new one
        [used("u-small", last["u-small"]), used("u-both", last["u-both"], "other")],  # row by row: later
        [used(p, last[p] - timedelta(hours=i), f"n{i}") for p in ("u-bulk", "u-both") for i in range(6)],  # set-based
        [used("u-small", earlier["u-small"] - timedelta(days=1))],  # earlier than the last: nothing moves
    ]
    engine = create_engine(database_url)
    try:
        for batch in batches:
            async with UnitOfWork(session_factory(engine)) as uow:
                await uow.usage.record(batch, last["u-small"])
                await uow.commit()
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(UsageProfile.aad_object_id, UsageProfile.last_seen_at, UsageProfile.last_seen_second)
                )
            ).all()
    finally:
        await engine.dispose()
    assert {person: (at, second) for person, at, second in rows} == {
        person: (at, int(at.timestamp())) for person, at in last.items()
    }


def test_sqlite_counts_the_bits_of_any_masked_word_exactly() -> None:
    """SQLite has no popcount: the query adds up 14-bit chunks in plain SQL, only those the masks can reach. Every
    62-bit word (all ones, none, single bits, random), under masks of every shape the windows make, counts exactly."""
    rng = random.Random(62)
    full = (1 << 62) - 1
    words = [0, full, 1, 1 << 61, 0x555555555555555, *(1 << rng.randrange(62) for _ in range(20))]
    words += [rng.getrandbits(62) for _ in range(200)]
    masks = [full, 0, 1, 1 << 61, (1 << 12) - 1 << 12, (1 << 40) - 1 << 11]
    masks += [((1 << rng.randint(1, 62 - low)) - 1) << low for low in (rng.randrange(62) for _ in range(40))]
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("CREATE TABLE t (word INTEGER, mask INTEGER)")
        connection.executemany("INSERT INTO t VALUES (?, ?)", [(w, m) for w in words for m in masks])
        for reach in (full, *masks[1:8]):  # what the query knows the masks can hold: here each mask within it
            count = targeting._popcount(f"word & mask & {reach}", reach, postgres=False)
            rows = connection.execute(f"SELECT word, mask, {count} FROM t").fetchall()
            assert [n for _, _, n in rows] == [(w & m & reach).bit_count() for w, m, _ in rows]
    finally:
        connection.close()
    assert targeting._popcount("x", 0, postgres=False) == "0"
    assert targeting._popcount("x", 1, postgres=False).count("% 15") == 1  # one chunk only
    assert targeting._popcount("x", (1 << 14) - 1 << 40, postgres=False).count("% 15") == 1  # 14 bits: one chunk
    assert targeting._popcount("x", (1 << 15) - 1 << 40, postgres=False).count("% 15") == 2
    assert targeting._popcount("x", 1 | 1 << 61, postgres=False).count("% 15") == 2  # the span between: none


@pytest.mark.parametrize("readers", [1, 2, 3, 4])
def test_id_ranges_shrink_round_by_round_and_hold_every_id_once(readers: int) -> None:
    """The SQLite audience's ranges: each round of `readers` ranges holds fewer people than the one before (random
    ids, as Entra's are, spread over them by the rounds' shares), and every id, of any form, is in exactly one."""
    rng = random.Random(readers)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(20_000)]
    ids += ["", "0", "F0000000-0000-0000-0000-000000000000", "not-a-guid", "~"]
    edges = targeting.range_edges(readers, max(ids))
    assert len(edges) == readers * len(targeting.ROUNDS) + 1
    assert edges == sorted(edges) and len(set(edges)) == len(edges)
    counts = [sum(low <= i < high for i in ids) for low, high in zip(edges, edges[1:], strict=False)]
    assert sum(counts) == len(ids)  # the ranges meet: each id is in exactly one
    shares = [w / sum(targeting.ROUNDS) / readers for w in targeting.ROUNDS for _ in range(readers)]
    for count, share in zip(counts, shares, strict=True):
        assert abs(count / 20_000 - share) < 0.01
    rounds = [sum(counts[r * readers : (r + 1) * readers]) for r in range(len(targeting.ROUNDS))]
    assert rounds == sorted(rounds, reverse=True)


@pytest.mark.parametrize("seed", range(3))
async def test_sqlite_decides_in_parts_exactly_as_in_one_query(
    sqlite_database: str, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """A large SQLite audience is decided in parts (ranges of AAD object ids), on connections of their own, each on
    its own thread, all reading one snapshot: for a tenant and for every tenant, the decisions are exactly those of
    one query and of the rules person by person, and people alike in different ranges are one group."""
    await empty_all_tables(sqlite_database)
    rng = random.Random(f"parts-{seed}")
    now = MOMENTS[seed]
    tenants = ["aaaaaaaa-0000-0000-0000-00000000000a", "bbbbbbbb-0000-0000-0000-00000000000b"]
    await _generate(sqlite_database, rng, now, tenants, people=120, zones=ZONES, random_ids=True)
    campaigns = CampaignSet.model_validate(CAMPAIGN_SETS["every kind"])
    policy, opening = AskPolicy(skip_weekends=False), ChatOpening.CREATE
    _, reference = await _both_ways(sqlite_database, tenants[0], campaigns, policy, now, opening)
    assert await _touch_some(sqlite_database, rng, reference, now) > 0
    # twins far apart, in the first range and one of the last: rows 500 + k and 9000 + k, their ids starting with 1
    # and f, installed 60 days ago and never seen (come-back's audience), untouched
    installed = now - timedelta(days=60)
    twins = [
        {"id": first + k, "tenant_id": tenant, "aad_object_id": f"{digit}{k}000000-0000-0000-0000-000000000000"}
        | {"time_zone": "UTC", "installed_at": installed, "created_at": now, "updated_at": now}
        for first, digit in ((500, "1"), (9000, "f"))
        for k, tenant in enumerate(tenants)
    ]
    engine = create_engine(sqlite_database)
    async with engine.begin() as connection:
        await connection.execute(insert(User), twins)
    await engine.dispose()

    monkeypatch.setattr(targeting, "PARTS", 3)
    monkeypatch.setattr(targeting, "PARTS_FROM", 1)
    parts: list[int] = []
    each_part = SnapshotReaders.each_part

    groups_in: list[int] = []  # each range's groups, of every range run

    def counted(readers: SnapshotReaders, statements: Any, convert: Any) -> Iterator[Any]:
        parts.append(len(statements))
        return each_part(readers, statements, lambda rows: groups_in.append(len(rows)) or convert(rows))

    monkeypatch.setattr(SnapshotReaders, "each_part", counted)
    engine = create_engine(sqlite_database)
    try:
        for tenant in (tenants[0], None):
            async with UnitOfWork(session_factory(engine)) as uow:  # a session that may write: one query
                one = await Audience(campaigns, policy, opening, now).decisions(uow, tenant)
                reference = []
                for each in [tenant] if tenant else sorted(tenants):
                    reference += await reference_targets(uow.session, each, campaigns, policy, now, opening)
            assert parts == []
            async with UnitOfWork(session_factory(engine)) as uow:
                await uow.reads_only()
                audience = Audience(campaigns, policy, opening, now)
                parted = await audience.decisions(uow, tenant)
                groups = await audience.query.run(uow.session, tenant)
            assert parts == [3 * len(targeting.ROUNDS)] * 2
            assert sum(n > 0 for n in groups_in) >= len(groups_in) - 2  # the random ids spread over the ranges
            parts.clear()
            groups_in.clear()
            assert parted == one
            assert [(t.user_id, t.locale) for t in parted] == [(t.user_id, t.locale) for t in one]  # not compared
            assert parted == reference
            keys = [g.key for g in groups]
            assert len(set(keys)) == len(keys)  # people alike are one group, even in different parts
            assert sorted(next(g.user_ids for g in groups if 500 in g.user_ids)) == [500, 9000]
    finally:
        await engine.dispose()


def test_sqlite_reads_each_install_s_seconds_from_the_audience_index(tmp_path: Path) -> None:
    """ix_users_audience holds the install's epoch seconds in the very form SQLite's audience query works them out
    (migration 0016), and a profile its last use's (0017): the query reads both, in zones of fixed and of changing
    offsets alike, and parses no instant at all; with the index of before 0016, it parses the installs."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'audience.db'}"
    now = MOMENTS[0]
    campaigns = CampaignSet.model_validate(CAMPAIGN_SETS["every kind"]).active
    query = targeting.AudienceQuery(campaigns, now, now - timedelta(days=30))

    def parses(zones: list[str | None]) -> int:
        """How many instants the parted statement parses a person (each a call of strftime or unixepoch)."""
        sql, parameters = query._statement(zones, None, postgres=False, parted=True)
        statement, arguments = targeting._positional(sql, parameters | {"low": "", "high": "g"}, sqlite.dialect())
        connection = sqlite3.connect(tmp_path / "audience.db")
        try:
            plan = " ".join(row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}", arguments))
            assert "SEARCH u USING COVERING INDEX ix_users_audience" in plan
            program = connection.execute(f"EXPLAIN {statement}", arguments).fetchall()
        finally:
            connection.close()
        return sum(1 for row in program if "Func" in row[1] and str(row[5]).startswith(("strftime", "unixepoch")))

    upgrade(url)
    # where offsets change, the span the last moment falls in is found by comparing its stored text: a parse there
    # would run for each span of the zone
    assert [parses(["UTC"]), parses(ZONES)] == [0, 0]
    connection = sqlite3.connect(tmp_path / "audience.db")
    try:  # the index as it was before 0016
        connection.execute("DROP INDEX ix_users_audience")
        columns = (
            "aad_object_id, tenant_id, locale, time_zone, installed_at, uninstalled_at, unreachable_at, opted_out_at"
        )
        connection.execute(f"CREATE INDEX ix_users_audience ON users ({columns})")
    finally:
        connection.close()
    # the install's seconds wherever they appear: the local day of the install and the last moment of people never
    # seen; where offsets change, also in the join on the install's span (twice)
    assert [parses(["UTC"]), parses(ZONES)] == [2, 4]


def test_sqlite_finds_an_instant_s_span_by_its_stored_text_as_by_its_seconds() -> None:
    """Where a zone's offset changes, SQLite finds the span a last-seen instant falls in by comparing the stored text
    with the span's bounds as text: for instants at, just before and within a bound's second, and for the open
    ends, the answer is the one whole seconds give (low <= seconds < high)."""
    bound = int(datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp())  # Europe's clocks went forward then
    spans = [(-FOREVER, bound, 3600), (bound, bound + 86400 * 210, 7200), (bound + 86400 * 210, FOREVER, 3600)]
    instants = [
        datetime.fromtimestamp(bound, UTC) + timedelta(microseconds=m)
        for m in (-1_000_001, -1, 0, 1, 500_000, 999_999, 1_000_000, 86400 * 210 * 1_000_000 - 1)
    ] + [datetime(1999, 1, 1, tzinfo=UTC), datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    connection = sqlite3.connect(":memory:")
    try:
        for instant in instants:
            stored = instant.strftime("%Y-%m-%d %H:%M:%S.%f")  # as UtcDateTime keeps it on SQLite
            by_text = [
                connection.execute(
                    "SELECT ? <= ? AND ? < ?", (targeting._at(low), stored, stored, targeting._at(high))
                ).fetchone()[0]
                for low, high, _ in spans
            ]
            seconds = int(instant.timestamp() // 1)
            assert by_text == [int(low <= seconds < high) for low, high, _ in spans], stored
    finally:
        connection.close()


async def test_groups_keep_every_text_exactly_and_tell_empty_from_none(database_url: str) -> None:
    """The groups' keys survive the trip whatever their texts hold (SQLite groups by the key's JSON text): quotes,
    backslashes, commas, brackets, other scripts; an empty locale and none are two groups, and people alike in all
    of it are one."""
    tenant = "cccccccc-0000-0000-0000-00000000000c"
    now = MOMENTS[0]
    installed = now - timedelta(days=60)  # installed 60 days ago and never seen: come-back's audience
    locales = ["en-US", 'a"b', "c\\d", "ü,[x]", "{}:null", "", None]
    people = [
        {"id": 100 + 2 * k + twin, "tenant_id": tenant, "aad_object_id": f"{k}{twin}000000-0000-0000-0000-000000000000"}
        | {"locale": locale, "time_zone": "UTC", "installed_at": installed, "created_at": now, "updated_at": now}
        for k, locale in enumerate(locales)
        for twin in (0, 1)
    ]
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(Tenant), [{"tenant_id": tenant, "first_seen_at": now, "last_seen_at": now}])
            await connection.execute(insert(User), people)
        campaigns = CampaignSet.model_validate(CAMPAIGN_SETS["every kind"])
        async with UnitOfWork(session_factory(engine)) as uow:
            groups = await Audience(campaigns, AskPolicy(), ChatOpening.CREATE, now).query.run(uow.session, tenant)
    finally:
        await engine.dispose()
    found = {(g.locale, tuple(sorted(g.user_ids)), tuple(sorted(g.aad_object_ids))) for g in groups}
    assert len(groups) == len(locales)
    assert found == {
        (
            locale,
            (100 + 2 * k, 101 + 2 * k),
            (f"{k}0000000-0000-0000-0000-000000000000", f"{k}1000000-0000-0000-0000-000000000000"),
        )
        for k, locale in enumerate(locales)
    }
    assert {(g.tenant_id, g.time_zone, g.days_since_install, g.has_history) for g in groups} == {
        (tenant, "UTC", 60, False)
    }
