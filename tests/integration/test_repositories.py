"""Repositories on real SQLite and PostgreSQL: upserts under concurrency, idempotent activity log, cascades."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage.engine import create_engine, session_factory
from storage.models import User
from storage.repositories import ConversationTarget, UserProfile
from storage.uow import UnitOfWork

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str):
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def test_concurrent_upserts_of_one_user_make_one_row(sessions) -> None:
    async def upsert(i: int) -> int:
        async with UnitOfWork(sessions) as uow:
            await uow.tenants.touch("t1", NOW)
            user_id = await uow.users.upsert(UserProfile("t1", "u1", locale=f"en-{i:02d}"), NOW)
            await uow.commit()
            return user_id

    ids = await asyncio.gather(*(upsert(i) for i in range(50)))
    assert len(set(ids)) == 1
    async with UnitOfWork(sessions) as uow:
        [user] = (await uow.session.execute(select(User))).scalars().all()
        assert user.locale and user.locale.startswith("en-")
        assert await uow.tenants.count() == 1


async def test_upsert_keeps_known_locale_when_activity_has_none(sessions) -> None:
    async with UnitOfWork(sessions) as uow:
        await uow.tenants.touch("t1", NOW)
        await uow.users.upsert(UserProfile("t1", "u1", "fr-FR", "Europe/Paris"), NOW)
        await uow.users.upsert(UserProfile("t1", "u1", None, None), NOW + timedelta(hours=1))
        await uow.commit()
    async with UnitOfWork(sessions) as uow:
        user = await uow.users.get("t1", "u1")
        assert user is not None and user.locale == "fr-FR" and user.time_zone == "Europe/Paris"
        assert user.updated_at == NOW + timedelta(hours=1) and user.created_at == NOW


async def test_activity_log_records_once(sessions) -> None:
    async def record() -> bool:
        async with UnitOfWork(sessions) as uow:
            fresh = await uow.activities.record(
                conversation_id="c",
                activity_id="a",
                activity_type="message",
                tenant_id="t1",
                aad_object_id="u1",
                now=NOW,
            )
            await uow.commit()
            return fresh

    results = await asyncio.gather(*(record() for _ in range(20)))
    assert results.count(True) == 1
    async with UnitOfWork(sessions) as uow:
        assert await uow.activities.count() == 1


async def test_timestamps_come_back_aware_utc(sessions) -> None:
    berlin = datetime(2026, 11, 25, 10, 30, tzinfo=UTC).astimezone()
    async with UnitOfWork(sessions) as uow:
        await uow.tenants.touch("t1", berlin)
        await uow.commit()
    async with UnitOfWork(sessions) as uow:
        tenant = await uow.tenants.get("t1")
        assert tenant is not None and tenant.first_seen_at.tzinfo is not None
        assert tenant.first_seen_at == berlin


async def test_naive_timestamps_are_refused(sessions) -> None:
    async with UnitOfWork(sessions) as uow:
        with pytest.raises(Exception, match="naive datetime"):
            await uow.tenants.touch("t1", datetime(2026, 1, 1))


async def test_foreign_keys_enforced(sessions) -> None:
    async with UnitOfWork(sessions) as uow:
        with pytest.raises(IntegrityError):
            await uow.users.upsert(UserProfile("no-such-tenant", "u1"), NOW)
            await uow.commit()


async def test_uncommitted_work_is_rolled_back(sessions) -> None:
    async with UnitOfWork(sessions) as uow:
        await uow.tenants.touch("t1", NOW)
    async with UnitOfWork(sessions) as uow:
        assert await uow.tenants.count() == 0


async def test_conversation_upsert_keeps_user_for_channel_events(sessions) -> None:
    async with UnitOfWork(sessions) as uow:
        await uow.tenants.touch("t1", NOW)
        user_id = await uow.users.upsert(UserProfile("t1", "u1"), NOW)
        target = ConversationTarget(
            "a:1", "t1", "personal", "msteams", "https://smba.trafficmanager.net/emea/", "28:bot", user_id=user_id
        )
        await uow.conversations.upsert(target, NOW)
        await uow.conversations.mark_removed("a:1", NOW)
        moved = ConversationTarget(
            "a:1", "t1", "personal", "msteams", "https://smba.trafficmanager.net/amer/", "28:bot"
        )
        await uow.conversations.upsert(moved, NOW + timedelta(days=1))
        await uow.commit()
    async with UnitOfWork(sessions) as uow:
        reference = await uow.conversations.get("a:1")
        assert reference is not None
        assert reference.user_id == user_id and reference.removed_at is None
        assert reference.service_url.endswith("/amer/")


async def test_send_moments_reserved_concurrently_never_fall_closer_than_the_interval(sessions) -> None:
    """Eight workers reserve 1–5 moments each, at once, from one tenant's schedule: every moment is distinct and at
    least 1/rate from the next, the first starts now, and a pause (429) pushes later reservations past it."""
    interval, now = 0.02, 1_800_000_000.0

    async def reserve(count: int) -> list[float]:
        async with UnitOfWork(sessions) as uow:
            first = await uow.outbox.reserve_slots("tenant-a", now, interval, count)
            await uow.commit()
        return [first + i * interval for i in range(count)]

    granted = await asyncio.gather(*(reserve(1 + i % 5) for i in range(8)))
    moments = sorted(m for block in granted for m in block)
    assert len(moments) == sum(1 + i % 5 for i in range(8))
    assert moments[0] == pytest.approx(now)
    assert min(b - a for a, b in zip(moments, moments[1:], strict=False)) == pytest.approx(interval)
    assert moments[-1] == pytest.approx(now + (len(moments) - 1) * interval)  # no gaps: nothing reserved is lost

    async with UnitOfWork(sessions) as uow:
        await uow.outbox.pause_tenant("tenant-a", now + 30, throttled=2)
        await uow.commit()
    [after_pause] = await reserve(1)
    assert after_pause == pytest.approx(now + 30)
    async with UnitOfWork(sessions) as uow:
        assert await uow.outbox.throttled() == 2
        later = await uow.outbox.reserve_slots("tenant-a", now + 100, interval, 2)  # idle since: starts at "now"
        assert later == pytest.approx(now + 100)
        other = await uow.outbox.reserve_slots("tenant-b", now, interval, 1)  # every tenant has its own schedule
        assert other == pytest.approx(now)
