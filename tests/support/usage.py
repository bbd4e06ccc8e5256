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
    """Every rollup as plain tuples, for exact comparisons."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            active = {
                (r.tenant_id, r.aad_object_id, day)
                for r in (await connection.execute(select(UsageActivity))).all()
                for day in ActiveDays.from_words({r.word: r.bits})
            }
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
