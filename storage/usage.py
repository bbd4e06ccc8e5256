"""Usage events in, rollups out.

`record` stores raw events (a duplicate is dropped by the unique identity) and folds exactly the ones that were new
into the rollups in the same transaction, so a rollup never counts an event twice and never misses one.
Every fold is an increment (`count = count + n`), which stays correct when batches for the same people commit
concurrently; rows are written in key order so concurrent batches lock them in the same order (no deadlocks).
A person's day is new when their all-events row ("*") comes back with exactly this batch's count after the upsert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, case, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engagement.usage import ALL_EVENTS, FeatureUse, UsageEvent
from storage.models import TenantUsageDaily, UsageDaily, UsageFeature, UsageProfile, UtcDateTime
from storage.models import UsageEvent as UsageEventRow
from storage.repositories import insert_for, upsert_sql

# The Teams bot records one signal per card answer, install or message, inside the user's turn: small batches use
# these statements, written once (see upsert_sql); large batches (the usage API) compile once per batch and send
# many rows with insertmanyvalues.
SMALL_BATCH = 8


_RAW = upsert_sql(
    "INSERT INTO usage_events (tenant_id, aad_object_id, name, occurred_at, day, received_at) "
    "VALUES (:tenant_id, :aad_object_id, :name, :occurred_at, :day, :received_at) "
    "ON CONFLICT (tenant_id, aad_object_id, name, occurred_at) DO NOTHING RETURNING tenant_id",
    occurred_at=UtcDateTime(),
    day=Date(),
    received_at=UtcDateTime(),
)
_DAILY = upsert_sql(
    "INSERT INTO usage_daily (tenant_id, aad_object_id, day, name, count) "
    "VALUES (:tenant_id, :aad_object_id, :day, :name, :count) "
    "ON CONFLICT (tenant_id, aad_object_id, day, name) DO UPDATE SET count = usage_daily.count + excluded.count "
    "RETURNING count",
    day=Date(),
)
_FEATURES = upsert_sql(
    "INSERT INTO usage_features (tenant_id, aad_object_id, name, total, first_at, last_at) "
    "VALUES (:tenant_id, :aad_object_id, :name, :total, :first_at, :last_at) "
    "ON CONFLICT (tenant_id, aad_object_id, name) DO UPDATE SET total = usage_features.total + excluded.total, "
    "first_at = CASE WHEN excluded.first_at < usage_features.first_at THEN excluded.first_at "
    "ELSE usage_features.first_at END, "
    "last_at = CASE WHEN excluded.last_at > usage_features.last_at THEN excluded.last_at "
    "ELSE usage_features.last_at END",
    first_at=UtcDateTime(),
    last_at=UtcDateTime(),
)
_PROFILES = upsert_sql(
    "INSERT INTO usage_profiles (tenant_id, aad_object_id, first_seen_at, last_seen_at, events) "
    "VALUES (:tenant_id, :aad_object_id, :first_seen_at, :last_seen_at, :events) "
    "ON CONFLICT (tenant_id, aad_object_id) DO UPDATE SET events = usage_profiles.events + excluded.events, "
    "first_seen_at = CASE WHEN excluded.first_seen_at < usage_profiles.first_seen_at THEN excluded.first_seen_at "
    "ELSE usage_profiles.first_seen_at END, "
    "last_seen_at = CASE WHEN excluded.last_seen_at > usage_profiles.last_seen_at THEN excluded.last_seen_at "
    "ELSE usage_profiles.last_seen_at END",
    first_seen_at=UtcDateTime(),
    last_seen_at=UtcDateTime(),
)
_TENANT_DAYS = upsert_sql(
    "INSERT INTO tenant_usage_daily (tenant_id, day, active_users, events) "
    "VALUES (:tenant_id, :day, :active_users, :events) "
    "ON CONFLICT (tenant_id, day) DO UPDATE SET active_users = tenant_usage_daily.active_users + "
    "excluded.active_users, events = tenant_usage_daily.events + excluded.events",
    day=Date(),
)


@dataclass(frozen=True)
class RecordResult:
    stored: int  # new events, folded into the rollups
    duplicates: int  # already known (in this batch or an earlier one)


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- writing ------------------------------------------------------------------------------------------------

    async def record(self, events: Sequence[UsageEvent], now: datetime) -> RecordResult:
        unique = {event.identity: event for event in events}
        fresh = await self._insert_raw(sorted(unique.values(), key=lambda e: e.identity), now)
        if fresh:
            await self._fold(fresh)
        return RecordResult(stored=len(fresh), duplicates=len(events) - len(fresh))

    async def _insert_raw(self, events: list[UsageEvent], now: datetime) -> list[UsageEvent]:
        by_identity = {e.identity: e for e in events}
        table = UsageEventRow.__table__
        stmt = (
            insert_for(self.session, table)
            .on_conflict_do_nothing(index_elements=["tenant_id", "aad_object_id", "name", "occurred_at"])
            .returning(table.c.tenant_id, table.c.aad_object_id, table.c.name, table.c.occurred_at)
        )
        rows = [
            {
                "tenant_id": e.tenant_id,
                "aad_object_id": e.aad_object_id,
                "name": e.name,
                "occurred_at": e.occurred_at,
                "day": e.day,
                "received_at": now,
            }
            for e in events
        ]
        if len(rows) <= SMALL_BATCH:
            fresh = []
            for event, row in zip(events, rows, strict=True):
                if (await self.session.execute(_RAW, row)).first() is not None:
                    fresh.append(event)
            return fresh
        # one compiled statement, sent in batches by SQLAlchemy's insertmanyvalues (RETURNING included): building
        # a 2,000-row VALUES clause per call cost more than the database did (bench/ingestion.py)
        return [by_identity[(r[0], r[1], r[2], r[3])] for r in (await self.session.execute(stmt, rows)).all()]

    async def _fold(self, events: list[UsageEvent]) -> None:
        daily: dict[tuple[str, str, date, str], int] = defaultdict(int)
        features: dict[tuple[str, str, str], list[Any]] = {}
        profiles: dict[tuple[str, str], list[Any]] = {}
        for e in events:
            for name in (e.name, ALL_EVENTS):
                daily[(e.tenant_id, e.aad_object_id, e.day, name)] += 1
            feature = features.setdefault((e.tenant_id, e.aad_object_id, e.name), [0, e.occurred_at, e.occurred_at])
            feature[0] += 1
            feature[1] = min(feature[1], e.occurred_at)
            feature[2] = max(feature[2], e.occurred_at)
            profile = profiles.setdefault((e.tenant_id, e.aad_object_id), [0, e.occurred_at, e.occurred_at])
            profile[0] += 1
            profile[1] = min(profile[1], e.occurred_at)
            profile[2] = max(profile[2], e.occurred_at)

        new_days = await self._upsert_daily(daily)
        tenant_days: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
        for (tenant_id, _, day, name), count in daily.items():
            if name == ALL_EVENTS:
                tenant_days[(tenant_id, day)][1] += count
        for tenant_id, day in new_days:
            tenant_days[(tenant_id, day)][0] += 1
        await self._upsert_features(features)
        await self._upsert_profiles(profiles)
        await self._upsert_tenant_days(tenant_days)

    async def _upsert_daily(self, daily: dict[tuple[str, str, date, str], int]) -> list[tuple[str, date]]:
        """Returns (tenant, day) once for every person whose day became active with this batch."""
        new_days: list[tuple[str, date]] = []
        rows: list[dict[str, Any]] = [
            {"tenant_id": t, "aad_object_id": u, "day": d, "name": n, "count": c}
            for (t, u, d, n), c in sorted(daily.items())
        ]
        if len(rows) <= SMALL_BATCH:
            for row in rows:
                count = (await self.session.execute(_DAILY, row)).scalar_one()
                if row["name"] == ALL_EVENTS and count == row["count"]:
                    new_days.append((row["tenant_id"], row["day"]))
            return new_days
        table = UsageDaily.__table__
        stmt = insert_for(self.session, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "aad_object_id", "day", "name"],
            set_={"count": table.c.count + stmt.excluded.count},
        ).returning(table.c.tenant_id, table.c.aad_object_id, table.c.day, table.c.name, table.c.count)
        for t, u, d, n, count in (await self.session.execute(stmt, rows)).all():
            if n == ALL_EVENTS and count == daily[(t, u, d, n)]:
                new_days.append((t, d))
        return new_days

    async def _upsert_features(self, features: dict[tuple[str, str, str], list[Any]]) -> None:
        rows = [
            {"tenant_id": t, "aad_object_id": u, "name": n, "total": v[0], "first_at": v[1], "last_at": v[2]}
            for (t, u, n), v in sorted(features.items())
        ]
        if len(rows) <= SMALL_BATCH:
            await self.session.execute(_FEATURES, rows)
            return
        await self._accumulate(
            UsageFeature,
            rows,
            ("tenant_id", "aad_object_id", "name"),
            sums=("total",),
            earliest="first_at",
            latest="last_at",
        )

    async def _upsert_profiles(self, profiles: dict[tuple[str, str], list[Any]]) -> None:
        rows = [
            {"tenant_id": t, "aad_object_id": u, "events": v[0], "first_seen_at": v[1], "last_seen_at": v[2]}
            for (t, u), v in sorted(profiles.items())
        ]
        if len(rows) <= SMALL_BATCH:
            await self.session.execute(_PROFILES, rows)
            return
        await self._accumulate(
            UsageProfile,
            rows,
            ("tenant_id", "aad_object_id"),
            sums=("events",),
            earliest="first_seen_at",
            latest="last_seen_at",
        )

    async def _upsert_tenant_days(self, tenant_days: dict[tuple[str, date], list[int]]) -> None:
        rows = [
            {"tenant_id": t, "day": d, "active_users": v[0], "events": v[1]}
            for (t, d), v in sorted(tenant_days.items())
        ]
        if len(rows) <= SMALL_BATCH:
            await self.session.execute(_TENANT_DAYS, rows)
            return
        await self._accumulate(TenantUsageDaily, rows, ("tenant_id", "day"), sums=("active_users", "events"))

    async def _accumulate(
        self,
        model: Any,
        rows: list[dict[str, Any]],
        keys: tuple[str, ...],
        *,
        sums: tuple[str, ...],
        earliest: str | None = None,
        latest: str | None = None,
    ) -> None:
        """Upsert `rows` (one statement, executemany): `sums` add up, `earliest` keeps the smaller value, `latest`
        the larger."""
        if not rows:
            return
        table = model.__table__
        stmt = insert_for(self.session, table)
        changes: dict[str, Any] = {c: table.c[c] + stmt.excluded[c] for c in sums}
        if earliest:
            current, incoming = table.c[earliest], stmt.excluded[earliest]
            changes[earliest] = case((incoming < current, incoming), else_=current)
        if latest:
            current, incoming = table.c[latest], stmt.excluded[latest]
            changes[latest] = case((incoming > current, incoming), else_=current)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changes), rows)

    async def purge_raw(self, received_before: datetime) -> int:
        result = await self.session.execute(delete(UsageEventRow).where(UsageEventRow.received_at < received_before))
        return int(getattr(result, "rowcount", 0) or 0)

    # -- reading (targeting and health read rollups, never raw events) ------------------------------------------

    async def active_days(self, tenant_id: str, since: date) -> dict[str, set[date]]:
        stmt = select(UsageDaily.aad_object_id, UsageDaily.day).where(
            UsageDaily.tenant_id == tenant_id, UsageDaily.name == ALL_EVENTS, UsageDaily.day >= since
        )
        days: dict[str, set[date]] = defaultdict(set)
        for aad, day in (await self.session.execute(stmt)).all():
            days[aad].add(day)
        return days

    async def profiles(self, tenant_id: str) -> dict[str, tuple[datetime, datetime]]:
        stmt = select(UsageProfile.aad_object_id, UsageProfile.first_seen_at, UsageProfile.last_seen_at).where(
            UsageProfile.tenant_id == tenant_id
        )
        return {aad: (first, last) for aad, first, last in (await self.session.execute(stmt)).all()}

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
