"""Synthetic data for `nurture demo`: tenants, people, personal chats, usage histories and renewal dates.

Each demo person follows one usage story (new, onboarding, stuck before the value moment, power user, fading,
narrow, gone quiet, healthy), so `nurture targets` shows every campaign. Usage goes through the same ingestion path
as the API. Safe to run again: people and chats are upserted, and events on the same days are duplicates.
Demo chats point at a host no connector accepts (demo.nurture.invalid): nothing is ever sent for them.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.engagement.usage import parse_batch
from storage.people import ConversationTarget, UserProfile
from storage.uow import UnitOfWork

DEMO_NAMESPACE = uuid.UUID("6f1c9a52-2d8e-4b7a-9a55-0c1e8e1d7a10")
DEMO_SERVICE_URL = "https://demo.nurture.invalid/teams/"
_LOCALES = [
    ("en-US", "America/New_York"),
    ("de-DE", "Europe/Berlin"),
    ("fr-FR", "Europe/Paris"),
    ("es-ES", "Europe/Madrid"),
    ("ja-JP", "Asia/Tokyo"),
]


@dataclass(frozen=True)
class Story:
    """A usage history: installed `installed_days` ago, active on `active` day offsets (0 = today) doing `events`."""

    name: str
    installed_days: int
    active: tuple[int, ...]
    events: tuple[str, ...]


_EVERYTHING = ("report_created", "dashboard_shared", "alert_configured")
STORIES = (
    Story("new today", 0, (0,), ("app_opened",)),
    Story("onboarding, day 3", 3, (0, 1, 3), ("app_opened",)),
    Story("active, never created a report", 20, (1, 2, 4, 6, 9, 12), ("app_opened", "dashboard_shared")),
    Story("power user past 10 reports", 60, tuple(range(1, 15)), _EVERYTHING),
    Story("fading: 10 days then 2", 90, (3, 9, *range(15, 25)), _EVERYTHING),
    Story("narrow: never shares or alerts", 60, (1, 2, 3, 5, 8, 16, 20), ("report_created",)),
    Story("gone quiet for 40 days", 100, (40, 42, 45, 50), _EVERYTHING),
    Story("healthy", 45, (1, 2, 3, 4, 7, 8, 10, 15, 17, 19, 22), _EVERYTHING),
)


@dataclass(frozen=True)
class DemoSummary:
    tenants: int
    users: int
    events: int = 0


def demo_id(kind: str, index: int) -> str:
    """Stable GUIDs, so a second run updates the same rows instead of adding new ones."""
    return str(uuid.uuid5(DEMO_NAMESPACE, f"{kind}-{index}"))


DEMO_TENANT_NAMES = ("Contoso Pharma", "Fabrikam Retail", "Northwind Logistics")
FADING_TENANT = 2  # every story there ended a month ago: usage collapsed, so its health is at risk


def _events(
    story: Story, tenant_id: str, user_id: str, today: datetime, now: datetime, shift: int = 0
) -> list[dict[str, Any]]:
    events = []
    for offset in (o + shift for o in story.active):
        day = today - timedelta(days=offset)
        for hour, name in enumerate(story.events):
            events.append(
                {
                    "tenant_id": tenant_id,
                    "user_id": user_id,
                    "name": name,
                    "timestamp": min(day.replace(hour=8 + hour), now - timedelta(minutes=1 + hour)).isoformat(),
                }
            )
    return events


async def load_demo(uow: UnitOfWork, now: datetime, *, tenants: int = 3, users_per_tenant: int = 12) -> DemoSummary:
    rng = random.Random(42)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    raw_events: list[dict[str, Any]] = []
    for t in range(tenants):
        tenant_id = demo_id("tenant", t)
        await uow.tenants.touch(tenant_id, now)
        await uow.alerts.set_name(tenant_id, DEMO_TENANT_NAMES[t % len(DEMO_TENANT_NAMES)], now)
        # renewal reminders: one tenant inside the 60-day window, one inside the 90-day one
        if t < 2:
            await uow.tenants.set_renewal(tenant_id, (now + timedelta(days=(55, 85)[t])).date(), now)
        for u in range(users_per_tenant):
            locale, zone = rng.choice(_LOCALES)
            aad = demo_id(f"user-{t}", u)
            user_id = await uow.users.upsert(UserProfile(tenant_id, aad, locale, zone), now)
            story = STORIES[u % len(STORIES)]
            shift = 31 if t == FADING_TENANT else 0
            await uow.users.mark_installed(user_id, now - timedelta(days=story.installed_days + shift))
            await uow.conversations.upsert(
                ConversationTarget(
                    conversation_id=f"a:demo-{aad}",
                    tenant_id=tenant_id,
                    scope="personal",
                    channel_id="msteams",
                    service_url=DEMO_SERVICE_URL,
                    bot_id="28:nurture-demo",
                    user_id=user_id,
                ),
                now,
            )
            raw_events += _events(story, tenant_id, aad, today, now, shift)
    events, rejections = parse_batch(raw_events, now)
    if rejections:
        raise ValueError(f"demo events refused: {rejections[0].reason}")
    await uow.usage.record(events, now)
    await uow.commit()
    return DemoSummary(tenants, tenants * users_per_tenant, len(events))
