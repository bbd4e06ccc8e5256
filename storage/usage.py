"""Usage events in, rollups out.

`record` stores raw events (a duplicate is dropped by the unique identity) and folds exactly the ones that were new
into the rollups in the same transaction, so a rollup never counts an event twice and never misses one.
Every fold is an increment (`count = count + n`, `bits = bits | new`), which stays correct when batches for the same
people commit concurrently; rows are written in key order so concurrent batches lock them in the same order (no
deadlocks). A person's day is new when the upsert of their word reports its bit in `added` (set now, not before).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    column,
    delete,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engagement.usage import WORD_DAYS, ActiveDays, FeatureUse, UsageEvent, day_of, epoch_day
from storage.models import (
    EVENT_NAME_LENGTH,
    ID_LENGTH,
    RECENT_COLUMNS,
    RECENT_WORDS,
    TenantUsageDaily,
    UsageActivity,
    UsageFeature,
    UtcDateTime,
)
from storage.models import UsageEvent as UsageEventRow
from storage.sql import on_postgres, upsert_sql

# The Teams bot records one signal per card answer, install or message, inside the user's turn: small batches use
# these statements, written once (see upsert_sql), row by row; large batches (the usage API) are folded in SQL below.
SMALL_BATCH = 8


# What every fold does on a conflict (also read by storage.answers, which folds a card answer's signal).
RAW_CONFLICT = "ON CONFLICT (tenant_id, aad_object_id, name, occurred_at) DO NOTHING"
# the bits this upsert set that were not set before come back in `added`: the person's days that became active
ACTIVITY_CONFLICT = (
    "ON CONFLICT (tenant_id, aad_object_id, word) DO UPDATE SET added = excluded.bits & ~usage_activity.bits, "
    "bits = usage_activity.bits | excluded.bits"
)
FEATURES_CONFLICT = (
    "ON CONFLICT (tenant_id, aad_object_id, name) DO UPDATE SET total = usage_features.total + excluded.total, "
    "first_at = CASE WHEN excluded.first_at < usage_features.first_at THEN excluded.first_at "
    "ELSE usage_features.first_at END, "
    "last_at = CASE WHEN excluded.last_at > usage_features.last_at THEN excluded.last_at "
    "ELSE usage_features.last_at END"
)


def profile_word(row: str, word: str) -> str:
    """SQL for the bits a usage_profiles `row` holds of absolute `word` (0 outside its frame of newest words)."""
    slots = " ".join(f"WHEN {k} THEN {row}.{column}" for k, column in enumerate(RECENT_COLUMNS))
    return f"CASE {row}.recent_word - ({word}) {slots} ELSE 0 END"


def _recent_words_merged() -> str:
    """SET clauses that fold a batch's newest words (`excluded`) into the profile's: both move into the frame of the
    newer `recent_word` and are ORed; a word that falls out of the frame is dropped (usage_activity keeps it). The
    merge is an OR of bits by absolute word, so concurrent batches end the same in any order."""
    top = (
        "CASE WHEN excluded.recent_word > usage_profiles.recent_word THEN excluded.recent_word "
        "ELSE usage_profiles.recent_word END"
    )
    clauses = [f"recent_word = {top}"]
    for k, slot in enumerate(RECENT_COLUMNS):
        word = f"({top}) - {k}"
        clauses.append(f"{slot} = ({profile_word('usage_profiles', word)}) | ({profile_word('excluded', word)})")
    return ", ".join(clauses)


PROFILES_CONFLICT = (
    "ON CONFLICT (tenant_id, aad_object_id) DO UPDATE SET events = usage_profiles.events + excluded.events, "
    "first_seen_at = CASE WHEN excluded.first_seen_at < usage_profiles.first_seen_at THEN excluded.first_seen_at "
    "ELSE usage_profiles.first_seen_at END, "
    "last_seen_at = CASE WHEN excluded.last_seen_at > usage_profiles.last_seen_at THEN excluded.last_seen_at "
    f"ELSE usage_profiles.last_seen_at END, {_recent_words_merged()}"
)
PROFILE_COLUMNS = "tenant_id, aad_object_id, first_seen_at, last_seen_at, events, recent_word, " + ", ".join(
    RECENT_COLUMNS
)
TENANT_DAYS_CONFLICT = (
    "ON CONFLICT (tenant_id, day) DO UPDATE SET active_users = tenant_usage_daily.active_users + "
    "excluded.active_users, events = tenant_usage_daily.events + excluded.events"
)

# one row each, with named parameters
RAW_SQL = (
    "INSERT INTO usage_events (tenant_id, aad_object_id, name, occurred_at, day, received_at) "
    f"VALUES (:tenant_id, :aad_object_id, :name, :occurred_at, :day, :received_at) {RAW_CONFLICT} RETURNING tenant_id"
)
ACTIVITY_SQL = (
    "INSERT INTO usage_activity (tenant_id, aad_object_id, word, bits, added) "
    f"VALUES (:tenant_id, :aad_object_id, :word, :bits, :bits) {ACTIVITY_CONFLICT} RETURNING added"
)
FEATURES_SQL = (
    "INSERT INTO usage_features (tenant_id, aad_object_id, name, total, first_at, last_at) "
    f"VALUES (:tenant_id, :aad_object_id, :name, :total, :first_at, :last_at) {FEATURES_CONFLICT}"
)
PROFILES_SQL = (
    f"INSERT INTO usage_profiles ({PROFILE_COLUMNS}) VALUES (:tenant_id, :aad_object_id, :first_seen_at, "
    f":last_seen_at, :events, :recent_word, {', '.join(f':{slot}' for slot in RECENT_COLUMNS)}) "
    f"{PROFILES_CONFLICT}"
)
TENANT_DAYS_SQL = (
    "INSERT INTO tenant_usage_daily (tenant_id, day, active_users, events) "
    f"VALUES (:tenant_id, :day, :active_users, :events) {TENANT_DAYS_CONFLICT}"
)
_RAW = upsert_sql(RAW_SQL, occurred_at=UtcDateTime(), day=Date(), received_at=UtcDateTime())
_ACTIVITY = upsert_sql(ACTIVITY_SQL, bits=BigInteger())
_FEATURES = upsert_sql(FEATURES_SQL, first_at=UtcDateTime(), last_at=UtcDateTime())
_PROFILES = upsert_sql(
    PROFILES_SQL,
    first_seen_at=UtcDateTime(),
    last_seen_at=UtcDateTime(),
    **dict.fromkeys(RECENT_COLUMNS, BigInteger()),
)
_TENANT_DAYS = upsert_sql(TENANT_DAYS_SQL, day=Date())


# -- the set-based fold of large batches ------------------------------------------------------------------------------
# A temporary table (one per connection, emptied around every batch) holds the batch; every rollup is one
# INSERT … SELECT … GROUP BY … ON CONFLICT in key order (code points, see _C), so concurrent large batches lock
# rows alike; the bot's own signals are one event, one row per table, in the same table order.
_STAGING = Table(
    "usage_batch",
    MetaData(),
    Column("tenant_id", String(ID_LENGTH)),
    Column("aad_object_id", String(ID_LENGTH)),
    Column("name", String(EVENT_NAME_LENGTH)),
    Column("occurred_at", UtcDateTime()),
    Column("day", Date()),
)
_COLUMNS = UsageEvent._fields  # the staging table's columns, in an event's order
# Rows are upserted in key order, so concurrent batches lock them alike: in code-point order, the order Python sorts
# small batches in (COLLATE "C" on PostgreSQL, whose database may have another collation; SQLite's is this one)
_C = 'COLLATE "C"'
_EMPTY_STAGING = text("DELETE FROM usage_batch")
_STAGING_COLUMNS = (
    f"tenant_id VARCHAR({ID_LENGTH}), aad_object_id VARCHAR({ID_LENGTH}), name VARCHAR({EVENT_NAME_LENGTH}), "
)
_STAGING_DDL_PG = text(
    f"CREATE TEMPORARY TABLE IF NOT EXISTS usage_batch ({_STAGING_COLUMNS}occurred_at TIMESTAMPTZ, day DATE) "
    "ON COMMIT DELETE ROWS"
)
_STAGING_DDL_SQLITE = text(
    f"CREATE TEMPORARY TABLE IF NOT EXISTS usage_batch ({_STAGING_COLUMNS}occurred_at DATETIME, day DATE)"
)
# PostgreSQL: the batch arrives as one row of arrays; what the insert skips (known before, or stored meanwhile by a
# concurrent batch: ON CONFLICT waits for it) is not returned, so only new events reach the staging table
_STORE_NEW_PG = text(
    "WITH stored AS (INSERT INTO usage_events (tenant_id, aad_object_id, name, occurred_at, day, received_at) "
    "SELECT *, CAST(:now AS timestamptz) FROM unnest(CAST(:tenant_id AS varchar[]), CAST(:aad_object_id AS varchar[]), "
    "CAST(:name AS varchar[]), CAST(:occurred_at AS timestamptz[]), CAST(:day AS date[])) "
    "AS batch (tenant_id, aad_object_id, name, occurred_at, day) "
    f"ORDER BY tenant_id {_C}, aad_object_id {_C}, name {_C}, occurred_at "
    f"{RAW_CONFLICT} RETURNING tenant_id, aad_object_id, name, occurred_at, day) "
    "INSERT INTO usage_batch (tenant_id, aad_object_id, name, occurred_at, day) SELECT * FROM stored"
).bindparams(bindparam("now", type_=UtcDateTime()))
# SQLite: the batch is staged, what is known is dropped, the rest stored (this transaction is the only writer)
_DROP_KNOWN_SQLITE = text(
    "DELETE FROM usage_batch WHERE EXISTS (SELECT 1 FROM usage_events e WHERE e.tenant_id = usage_batch.tenant_id "
    "AND e.aad_object_id = usage_batch.aad_object_id AND e.name = usage_batch.name "
    "AND e.occurred_at = usage_batch.occurred_at)"
)
_STORE_STAGED_SQLITE = text(
    "INSERT INTO usage_events (tenant_id, aad_object_id, name, occurred_at, day, received_at) "
    "SELECT tenant_id, aad_object_id, name, occurred_at, day, :now FROM usage_batch"
).bindparams(bindparam("now", type_=UtcDateTime()))
# (person, epoch day, events) of the batch; a person's word holds the sum of its days' distinct powers of two (= OR)
_PEOPLE_DAYS = (
    "SELECT tenant_id, aad_object_id, {e} AS e, count(*) AS n FROM usage_batch GROUP BY tenant_id, aad_object_id, {e}"
)
_ACTIVITY_STAGED = (
    "INSERT INTO usage_activity (tenant_id, aad_object_id, word, bits, added) "
    "SELECT tenant_id, aad_object_id, e / 62, sum(CAST(1 AS BIGINT) << (e % 62)), sum(CAST(1 AS BIGINT) << (e % 62)) "
    "FROM {days} AS days WHERE true GROUP BY tenant_id, aad_object_id, e / 62 "
    f"ORDER BY tenant_id {{c}}, aad_object_id {{c}}, e / 62 {ACTIVITY_CONFLICT}"
)
# (tenant, day, people whose day became active with this batch, events), from the words' `added` bits
_TENANT_DAY_COUNTS = (
    column("tenant_id", String()),
    column("e", Integer()),
    column("new", Integer()),
    column("n", Integer()),
)
_NEW_AND_EVENTS = (
    "SELECT days.tenant_id, days.e, sum(CASE WHEN (up.added >> (days.e % 62)) & 1 = 1 THEN 1 ELSE 0 END), "
    "sum(days.n) FROM {days} AS days JOIN {up} AS up ON up.tenant_id = days.tenant_id "
    "AND up.aad_object_id = days.aad_object_id AND up.word = days.e / 62 GROUP BY days.tenant_id, days.e"
)
_PG_EPOCH_DAY = "(day - DATE '1970-01-01')"
_SQLITE_EPOCH_DAY = "CAST(julianday(day) - 2440587.5 AS INTEGER)"
# PostgreSQL reads the new days off the upserted rows (the row lock orders concurrent batches), the batch's days
# worked out once for both …
_ACTIVE_DAYS_PG = text(
    f"WITH days AS MATERIALIZED ({_PEOPLE_DAYS.format(e=_PG_EPOCH_DAY)}), "
    f"up AS ({_ACTIVITY_STAGED.format(days='days', c=_C)} RETURNING tenant_id, aad_object_id, word, added) "
    + _NEW_AND_EVENTS.format(days="days", up="up")
).columns(*_TENANT_DAY_COUNTS)
# … SQLite, the only writer, reads them back from the table after the upsert
_SQLITE_DAYS = f"({_PEOPLE_DAYS.format(e=_SQLITE_EPOCH_DAY)})"
_ACTIVE_DAYS_SQLITE = text(_ACTIVITY_STAGED.format(days=_SQLITE_DAYS, c=""))
_NEW_ACTIVE_DAYS_SQLITE = text(_NEW_AND_EVENTS.format(days=_SQLITE_DAYS, up="usage_activity")).columns(
    *_TENANT_DAY_COUNTS
)
_FEATURES_STAGED = (
    "INSERT INTO usage_features (tenant_id, aad_object_id, name, total, first_at, last_at) "
    "SELECT tenant_id, aad_object_id, name, count(*), min(occurred_at), max(occurred_at) FROM usage_batch WHERE true "
    f"GROUP BY tenant_id, aad_object_id, name ORDER BY tenant_id {{c}}, aad_object_id {{c}}, name {{c}} "
    f"{FEATURES_CONFLICT}"
)
_FEATURES_STAGED_PG = text(_FEATURES_STAGED.format(c=_C))
_FEATURES_STAGED_SQLITE = text(_FEATURES_STAGED.format(c=""))
# each person's events, their days (epoch days, distinct) and newest word: the words' bits are sums of distinct
# powers of two
_PROFILES_STAGED = (
    "WITH days AS (SELECT tenant_id, aad_object_id, {e} AS e, count(*) AS n, min(occurred_at) AS first_at, "
    "max(occurred_at) AS last_at FROM usage_batch GROUP BY tenant_id, aad_object_id, {e}), "
    "tops AS (SELECT tenant_id, aad_object_id, max(e) / 62 AS top FROM days GROUP BY tenant_id, aad_object_id) "
    f"INSERT INTO usage_profiles ({PROFILE_COLUMNS}) "
    "SELECT d.tenant_id, d.aad_object_id, min(d.first_at), max(d.last_at), sum(d.n), t.top, "
    + ", ".join(
        f"sum(CASE WHEN d.e / 62 = t.top - {k} THEN CAST(1 AS BIGINT) << (d.e % 62) ELSE 0 END)"
        for k in range(RECENT_WORDS)
    )
    + " FROM days d JOIN tops t ON t.tenant_id = d.tenant_id AND t.aad_object_id = d.aad_object_id WHERE true "
    f"GROUP BY d.tenant_id, d.aad_object_id, t.top ORDER BY d.tenant_id {{c}}, d.aad_object_id {{c}} "
    f"{PROFILES_CONFLICT}"
)
_PROFILES_STAGED_PG = text(_PROFILES_STAGED.format(e=_PG_EPOCH_DAY, c=_C))
_PROFILES_STAGED_SQLITE = text(_PROFILES_STAGED.format(e=_SQLITE_EPOCH_DAY, c=""))


def recent_words(words: dict[int, int]) -> dict[str, int]:
    """A profile's recent-word columns from some of a person's active-day words (word → bits; at least one)."""
    newest = max(words)
    return {"recent_word": newest} | {slot: words.get(newest - k, 0) for k, slot in enumerate(RECENT_COLUMNS)}


# each profile whose copy of the person's newest words differs from usage_activity, with what it should hold
_PERSON_WORD = "a{k}.tenant_id = p.tenant_id AND a{k}.aad_object_id = p.aad_object_id AND a{k}.word = n.word - {k}"
_EXPECTED = ", ".join(f"coalesce(a{k}.bits, 0) AS {slot}" for k, slot in enumerate(RECENT_COLUMNS))
_DRIFTED_PROFILES = text(
    "WITH newest AS (SELECT tenant_id, aad_object_id, max(word) AS word FROM usage_activity "
    "GROUP BY tenant_id, aad_object_id) "
    f"SELECT p.tenant_id, p.aad_object_id, coalesce(n.word, 0) AS recent_word, {_EXPECTED} FROM usage_profiles p "
    "LEFT JOIN newest n ON n.tenant_id = p.tenant_id AND n.aad_object_id = p.aad_object_id "
    + " ".join(f"LEFT JOIN usage_activity a{k} ON {_PERSON_WORD.format(k=k)}" for k in range(RECENT_WORDS))
    + " WHERE p.recent_word <> coalesce(n.word, 0) OR "
    + " OR ".join(f"p.{slot} <> coalesce(a{k}.bits, 0)" for k, slot in enumerate(RECENT_COLUMNS))
    + " ORDER BY p.tenant_id, p.aad_object_id"
)
_REPAIR_PROFILE = text(
    "UPDATE usage_profiles SET recent_word = :recent_word, "
    + ", ".join(f"{slot} = :{slot}" for slot in RECENT_COLUMNS)
    + " WHERE tenant_id = :tenant_id AND aad_object_id = :aad_object_id"
).bindparams(*(bindparam(slot, type_=BigInteger()) for slot in RECENT_COLUMNS))


@dataclass(frozen=True)
class DriftedProfile:
    """A profile whose newest words are not those in usage_activity, and the words it should hold."""

    tenant_id: str
    aad_object_id: str
    words: tuple[int, ...]  # recent_word, then the bits of it and the three words before it


@dataclass(frozen=True)
class RecordResult:
    stored: int  # new events, folded into the rollups
    duplicates: int  # already known (in this batch or an earlier one)


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- writing ------------------------------------------------------------------------------------------------

    async def record(self, events: Sequence[UsageEvent], now: datetime) -> RecordResult:
        unique = list({event.identity: event for event in events}.values())
        if len(unique) <= SMALL_BATCH:
            fresh = await self._insert_raw(sorted(unique, key=lambda e: e.identity), now)
            if fresh:
                await self._fold(fresh)
            stored = len(fresh)
        else:
            stored = await self._record_in_bulk(unique, now)
        return RecordResult(stored=stored, duplicates=len(events) - stored)

    # -- small batches: the bot's own signals, one statement per row ----------------------------------------------

    async def _insert_raw(self, events: list[UsageEvent], now: datetime) -> list[UsageEvent]:
        fresh = []
        for e in events:
            row = {
                "tenant_id": e.tenant_id,
                "aad_object_id": e.aad_object_id,
                "name": e.name,
                "occurred_at": e.occurred_at,
                "day": e.day,
                "received_at": now,
            }
            if (await self.session.execute(_RAW, row)).first() is not None:
                fresh.append(e)
        return fresh

    async def _fold(self, events: list[UsageEvent]) -> None:
        daily: dict[tuple[str, str, date], int] = defaultdict(int)
        features: dict[tuple[str, str, str], list[Any]] = {}
        profiles: dict[tuple[str, str], list[Any]] = {}
        for e in events:
            daily[(e.tenant_id, e.aad_object_id, e.day)] += 1
            feature = features.setdefault((e.tenant_id, e.aad_object_id, e.name), [0, e.occurred_at, e.occurred_at])
            feature[0] += 1
            feature[1] = min(feature[1], e.occurred_at)
            feature[2] = max(feature[2], e.occurred_at)
            profile = profiles.setdefault((e.tenant_id, e.aad_object_id), [0, e.occurred_at, e.occurred_at])
            profile[0] += 1
            profile[1] = min(profile[1], e.occurred_at)
            profile[2] = max(profile[2], e.occurred_at)

        tenant_days: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
        words: dict[tuple[str, str, int], int] = defaultdict(int)
        for (t, u, d), count in daily.items():
            n = epoch_day(d)
            words[(t, u, n // WORD_DAYS)] |= 1 << n % WORD_DAYS
            tenant_days[(t, d)][1] += count
        # the lock order every batch keeps: people's words, features, profiles, tenant days (each in key order)
        for (t, u, w), bits in sorted(words.items()):
            row = {"tenant_id": t, "aad_object_id": u, "word": w, "bits": bits}
            added = (await self.session.execute(_ACTIVITY, row)).scalar_one()
            for offset in range(WORD_DAYS):
                if added >> offset & 1:  # the person's day became active with this batch
                    tenant_days[(t, day_of(w * WORD_DAYS + offset))][0] += 1
        await self.session.execute(
            _FEATURES,
            [
                {"tenant_id": t, "aad_object_id": u, "name": n, "total": v[0], "first_at": v[1], "last_at": v[2]}
                for (t, u, n), v in sorted(features.items())
            ],
        )
        by_person: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        for (t, u, w), bits in words.items():
            by_person[(t, u)][w] = bits
        await self.session.execute(
            _PROFILES,
            [
                {"tenant_id": t, "aad_object_id": u, "events": v[0], "first_seen_at": v[1], "last_seen_at": v[2]}
                | recent_words(by_person[(t, u)])
                for (t, u), v in sorted(profiles.items())
            ],
        )
        await self._add_tenant_days([(t, d, v[0], v[1]) for (t, d), v in tenant_days.items()])

    # -- large batches (the usage API): the rows cross once, the database folds them ------------------------------

    async def _record_in_bulk(self, events: list[UsageEvent], now: datetime) -> int:
        """Stage the batch in a temporary table, keep the events not seen before, fold them with GROUP BY upserts.

        Shipping every rollup row from Python cost far more than the raw insert; here only the events travel, and
        the per-tenant-day counts come back.
        """
        postgres = on_postgres(self.session)
        await self.session.execute(_STAGING_DDL_PG if postgres else _STAGING_DDL_SQLITE)
        await self.session.execute(_EMPTY_STAGING)
        if postgres:  # an event is a tuple in the columns' order
            arrays = {column: list(values) for column, values in zip(_COLUMNS, zip(*events, strict=True), strict=True)}
            duplicates = len(events) - _rowcount(await self.session.execute(_STORE_NEW_PG, {"now": now, **arrays}))
        else:
            await self.session.execute(insert(_STAGING), [event._asdict() for event in events])
            duplicates = _rowcount(await self.session.execute(_DROP_KNOWN_SQLITE))
            await self.session.execute(_STORE_STAGED_SQLITE, {"now": now})
        stored = len(events) - duplicates
        if stored:
            if postgres:
                tenant_days = (await self.session.execute(_ACTIVE_DAYS_PG)).all()
            else:
                await self.session.execute(_ACTIVE_DAYS_SQLITE)
                tenant_days = (await self.session.execute(_NEW_ACTIVE_DAYS_SQLITE)).all()
            await self.session.execute(_FEATURES_STAGED_PG if postgres else _FEATURES_STAGED_SQLITE)
            await self.session.execute(_PROFILES_STAGED_PG if postgres else _PROFILES_STAGED_SQLITE)
            await self._add_tenant_days([(t, day_of(e), new, n) for t, e, new, n in tenant_days])
        await self.session.execute(_EMPTY_STAGING)
        return stored

    async def _add_tenant_days(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """(tenant, day, people newly active, events) added to the tenant's day, in key order."""
        if rows:
            await self.session.execute(
                _TENANT_DAYS,
                [{"tenant_id": t, "day": d, "active_users": p, "events": n} for t, d, p, n in sorted(rows)],
            )

    async def purge_raw(self, received_before: datetime) -> int:
        result = await self.session.execute(delete(UsageEventRow).where(UsageEventRow.received_at < received_before))
        return _rowcount(result)

    # -- the profiles' copies of the newest words: checked and repaired (nurture usage verify) --------------------

    async def drifted_profiles(self) -> list[DriftedProfile]:
        """Profiles whose newest words differ from usage_activity's. Every fold keeps the two alike; they drift only
        if something else writes usage_activity (a version from before migration 0013 left running, a hand edit)."""
        rows = (await self.session.execute(_DRIFTED_PROFILES)).all()
        return [DriftedProfile(r[0], r[1], tuple(r[2:])) for r in rows]

    async def repair_profiles(self) -> list[DriftedProfile]:
        """Copy usage_activity's newest words into the profiles that drifted; returns them. Folds wait meanwhile, so
        what is read is still true when it is written: on PostgreSQL behind a lock on usage_profiles that blocks
        writers, not readers; on SQLite behind its one writer lock, which every transaction here takes from its
        first statement (BEGIN IMMEDIATE: storage.engine)."""
        if on_postgres(self.session):
            await self.session.execute(text("LOCK TABLE usage_profiles IN SHARE ROW EXCLUSIVE MODE"))
        drifted = await self.drifted_profiles()
        if drifted:
            columns = ("recent_word", *RECENT_COLUMNS)
            rows = [
                {"tenant_id": d.tenant_id, "aad_object_id": d.aad_object_id} | dict(zip(columns, d.words, strict=True))
                for d in drifted
            ]
            await self.session.execute(_REPAIR_PROFILE, rows)
        return drifted

    # -- reading (targeting and health read rollups, never raw events) ------------------------------------------

    async def active_days(self, tenant_id: str, since: date) -> dict[str, set[date]]:
        """Each person's active days from `since` on, read from their stored words (health and reports, per tenant;
        campaigns count them in SQL: storage.targeting)."""
        a = UsageActivity
        stmt = select(a.aad_object_id, a.word, a.bits).where(
            a.tenant_id == tenant_id, a.word >= epoch_day(since) // WORD_DAYS, a.bits != 0
        )
        words: dict[str, dict[int, int]] = defaultdict(dict)
        for aad, word, bits in (await self.session.execute(stmt)).all():
            words[aad][word] = bits
        return {aad: {d for d in ActiveDays.from_words(found) if d >= since} for aad, found in words.items()}

    async def features(self, tenant_id: str, names: Sequence[str]) -> dict[str, dict[str, FeatureUse]]:
        if not names:
            return {}
        f = UsageFeature
        stmt = select(f.aad_object_id, f.name, f.total, f.first_at, f.last_at).where(
            f.tenant_id == tenant_id, f.name.in_(sorted(set(names)))
        )
        found: dict[str, dict[str, FeatureUse]] = defaultdict(dict)
        for aad, name, total, first_at, last_at in (await self.session.execute(stmt)).all():
            found[aad][name] = FeatureUse(total, first_at, last_at)
        return found

    async def tenant_days(self, tenant_id: str, since: date) -> dict[date, tuple[int, int]]:
        stmt = select(TenantUsageDaily.day, TenantUsageDaily.active_users, TenantUsageDaily.events).where(
            TenantUsageDaily.tenant_id == tenant_id, TenantUsageDaily.day >= since
        )
        return {day: (users, events) for day, users, events in (await self.session.execute(stmt)).all()}


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
