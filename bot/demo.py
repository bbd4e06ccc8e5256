"""Synthetic data for `nurture demo`: a few tenants and users, idempotent (safe to run again)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.repositories import UserProfile
from storage.uow import UnitOfWork

DEMO_NAMESPACE = uuid.UUID("6f1c9a52-2d8e-4b7a-9a55-0c1e8e1d7a10")
_LOCALES = [
    ("en-US", "America/New_York"),
    ("de-DE", "Europe/Berlin"),
    ("fr-FR", "Europe/Paris"),
    ("es-ES", "Europe/Madrid"),
    ("ja-JP", "Asia/Tokyo"),
]


@dataclass(frozen=True)
class DemoSummary:
    tenants: int
    users: int


def demo_id(kind: str, index: int) -> str:
    """Stable GUIDs, so a second run updates the same rows instead of adding new ones."""
    return str(uuid.uuid5(DEMO_NAMESPACE, f"{kind}-{index}"))


async def load_demo(uow: UnitOfWork, now: datetime, *, tenants: int = 3, users_per_tenant: int = 12) -> DemoSummary:
    rng = random.Random(42)
    for t in range(tenants):
        tenant_id = demo_id("tenant", t)
        await uow.tenants.touch(tenant_id, now)
        for u in range(users_per_tenant):
            locale, zone = rng.choice(_LOCALES)
            user_id = await uow.users.upsert(UserProfile(tenant_id, demo_id(f"user-{t}", u), locale, zone), now)
            await uow.users.mark_installed(user_id, now - timedelta(days=rng.randint(0, 120)))
    await uow.commit()
    return DemoSummary(tenants, tenants * users_per_tenant)
