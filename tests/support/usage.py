"""Building usage events and reading the rollups back, for tests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from bot.engagement.usage import ActiveDays
from storage.engine import create_engine
from storage.models import TenantUsageDaily, UsageActivity, UsageFeature, UsageProfile
from tests.support.activities import TENANT, USER


def event(
    name: str = "report_created",
    at: datetime | str = "2026-11-24T09:00:00+00:00",
    *,
    user: str = USER,
    tenant: str = TENANT,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "user_id": user,
        "name": name,
        "timestamp": at if isinstance(at, str) else at.isoformat(),
        **extra,
    }


async def rollups(database_url: str) -> dict[str, Any]:
    """Every rollup as plain tuples, for exact comparisons; and it checks that each profile's recent words are a
    true copy of the person's newest usage_activity words (what targeting reads instead of them)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            words: dict[tuple[str, str], dict[int, int]] = {}
            for r in (await connection.execute(select(UsageActivity))).all():
                words.setdefault((r.tenant_id, r.aad_object_id), {})[r.word] = r.bits
            active = {
                (tenant, aad, day) for (tenant, aad), found in words.items() for day in ActiveDays.from_words(found)
            }
            for r in (await connection.execute(select(UsageProfile))).all():
                stored = (r.recent_word, r.recent_0, r.recent_1, r.recent_2, r.recent_3)
                own = words.get((r.tenant_id, r.aad_object_id)) or {0: 0}
                top = max(own)
                expected = (top, *(own.get(top - k, 0) for k in range(4)))
                assert stored == expected, f"{r.aad_object_id}: profile words {stored}, activity says {expected}"
            features = {
                (r.tenant_id, r.aad_object_id, r.name): (r.total, r.first_at, r.last_at)
                for r in (await connection.execute(select(UsageFeature))).all()
            }
            profiles = {
                (r.tenant_id, r.aad_object_id): (r.events, r.first_seen_at, r.last_seen_at)
                for r in (await connection.execute(select(UsageProfile))).all()
            }
            tenant_days: dict[tuple[str, date], tuple[int, int]] = {
                (r.tenant_id, r.day): (r.active_users, r.events)
                for r in (await connection.execute(select(TenantUsageDaily))).all()
            }
    finally:
        await engine.dispose()
    return {"active": active, "features": features, "profiles": profiles, "tenant_days": tenant_days}
