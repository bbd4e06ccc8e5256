"""Repositories on real SQLite and PostgreSQL: upserts under concurrency, idempotent activity log, cascades."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage.campaigns import NewTouch
from storage.engine import DatabaseUnavailable, create_engine, session_factory
from storage.models import OutboxMessage, TenantRate, User
from storage.outbox import NewMessage, TenantHold
from storage.people import ConversationTarget, UserProfile
from storage.sql import ROWS_PER_INSERT
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


async def test_a_tenant_is_anchored_only_by_a_live_conversation(sessions) -> None:
    """Campaigns open chats only in tenants where the bot still has a conversation: a removed one does not count,
    whatever the scope, and tenants not asked about are not answered."""
    url = "https://smba.trafficmanager.net/emea/"
    async with UnitOfWork(sessions) as uow:
        for tenant in ("live", "removed", "none", "unasked"):
            await uow.tenants.touch(tenant, NOW)
        user_id = await uow.users.upsert(UserProfile("removed", "u1"), NOW)
        await uow.conversations.upsert(ConversationTarget("19:team", "live", "team", "msteams", url, "28:bot"), NOW)
        await uow.conversations.upsert(ConversationTarget("a:gone", "live", "personal", "msteams", url, "28:bot"), NOW)
        await uow.conversations.mark_removed("a:gone", NOW)
        personal = ConversationTarget("a:1", "removed", "personal", "msteams", url, "28:bot", user_id=user_id)
        await uow.conversations.upsert(personal, NOW)
        await uow.conversations.upsert(ConversationTarget("19:t2", "removed", "team", "msteams", url, "28:bot"), NOW)
        await uow.conversations.upsert(ConversationTarget("19:t3", "unasked", "team", "msteams", url, "28:bot"), NOW)
        for conversation_id in ("a:1", "19:t2"):
            await uow.conversations.mark_removed(conversation_id, NOW)
        await uow.commit()
    async with UnitOfWork(sessions) as uow:
        assert await uow.conversations.anchored(["live", "removed", "none", "nobody-knows"]) == {"live"}
        assert await uow.conversations.anchored([]) == set()


async def test_one_worker_at_a_time_holds_a_tenant(sessions) -> None:
    """Eight workers try to take two tenants at once: exactly one holds each. A holder keeps its tenant by renewing;
    released, the next holder may send once the last one's requests have left every window; a hold that ran out is
    taken over, and the new holder waits `quiet` seconds past its end. A pause (429) is handed to the next holder."""
    now, hold, quiet = 1_800_000_000.0, 10.0, 1.2

    async def take(worker: str, at: float) -> dict[str, TenantHold]:
        async with UnitOfWork(sessions) as uow:
            held = await uow.outbox.hold_tenants(worker, ["tenant-a", "tenant-b"], at, hold, quiet)
            await uow.commit()
        return held

    taken = await asyncio.gather(*(take(f"w{i}", now) for i in range(8)))
    for tenant in ("tenant-a", "tenant-b"):
        assert sum(tenant in held for held in taken) == 1
    owner = next(f"w{i}" for i, held in enumerate(taken) if "tenant-a" in held)
    assert next(held for held in taken if "tenant-a" in held)["tenant-a"] == TenantHold(0.0, 0.0)  # nobody sent yet
    other = "w-other"
    assert "tenant-a" not in await take(other, now + 5)  # held
    assert "tenant-a" in await take(owner, now + 5)  # renewed: held until now + 15
    assert "tenant-a" not in await take(other, now + 14)

    async with UnitOfWork(sessions) as uow:
        await uow.outbox.pause_tenant("tenant-a", now + 30, throttled=2)
        await uow.outbox.release_tenants(owner, {"tenant-a": now + 15.5})
        await uow.outbox.release_tenants(other, {"tenant-b": now + 99})  # not its own: nothing happens
        await uow.commit()
    assert (await take(other, now + 15))["tenant-a"] == TenantHold(now + 15.5, now + 30)
    async with UnitOfWork(sessions) as uow:
        assert await uow.outbox.throttled() == 2
        rates = {r.tenant_id: r for r in (await uow.session.execute(select(TenantRate))).scalars()}
        assert rates["tenant-a"].holder == other and rates["tenant-a"].held_until_epoch == pytest.approx(now + 25)
        assert rates["tenant-b"].quiet_until_epoch == 0.0

    # the holder goes silent: after its hold ran out another takes over, and waits until its requests left the windows
    assert (await take(owner, now + 26))["tenant-a"] == TenantHold(now + 25 + quiet, now + 30)


async def test_many_touches_and_cards_in_few_statements_each_get_their_own_id(sessions) -> None:
    """A campaign run records touches and queues cards hundreds at a statement: each comes back with its own id in
    the order given (RETURNING has no order), across batches; one recorded before, or twice in the same call, gets
    None — and the first of two the id; the links reach the touches."""
    count = ROWS_PER_INSERT + 7  # two statements each
    async with UnitOfWork(sessions) as uow:
        await uow.tenants.touch("t1", NOW)
        [before] = await uow.campaigns.add_touches([_touch("p-0003")], NOW)
        touches = [_touch(f"p-{i:04d}", holdout=i % 3 == 0) for i in reversed(range(count))]
        touches.insert(100, _touch("p-0042"))  # the same step twice in one call
        ids = await uow.campaigns.add_touches(touches, NOW)
        await uow.commit()
    assert before is not None
    people = [t.aad_object_id for t in touches]
    twice = [i for i, aad in enumerate(people) if aad == "p-0042"]
    assert [i for i, found in enumerate(ids) if found is None] == sorted([people.index("p-0003"), twice[1]])
    assert ids[twice[0]] is not None
    async with UnitOfWork(sessions) as uow:
        stored = {t.id: t for t in await uow.campaigns.all_touches()}
    assert len(stored) == count
    for t, found in zip(touches, ids, strict=True):
        if found is not None:
            assert (stored[found].aad_object_id, stored[found].holdout) == (t.aad_object_id, t.holdout)

    card = {"type": "AdaptiveCard", "version": "1.5", "body": []}
    keys = [f"campaign-touch:{i}" for i in sorted(stored)]
    async with UnitOfWork(sessions) as uow:
        [early] = await uow.outbox.enqueue_many([NewMessage.of_card(keys[5], "legacy", "t1", None, "a:1", card)], NOW)
        messages = [NewMessage.of_card(k, "legacy", "t1", None, f"a:{k}", card) for k in reversed(keys)]
        queued = await uow.outbox.enqueue_many(messages, NOW)
        links = [(int(m.dedupe_key.split(":")[1]), q) for m, q in zip(messages, queued, strict=True) if q is not None]
        await uow.campaigns.link_outbox(links)
        await uow.commit()
    assert early is not None
    assert [m.dedupe_key for m, q in zip(messages, queued, strict=True) if q is None] == [keys[5]]
    async with UnitOfWork(sessions) as uow:
        rows = {m.id: m for m in (await uow.session.execute(select(OutboxMessage))).scalars()}
        touched = {t.id: t.outbox_id for t in await uow.campaigns.all_touches()}
    assert len(rows) == count
    for m, q in zip(messages, queued, strict=True):
        if q is not None:
            assert (rows[q].dedupe_key, rows[q].conversation_id, rows[q].status) == (
                m.dedupe_key,
                m.conversation_id,
                "queued",
            )
    assert {t: o for t, o in touched.items() if o is not None} == dict(links)
    assert len(links) == count - 1


def _touch(aad: str, holdout: bool = False) -> NewTouch:
    return NewTouch("fading", "legacy", "drop", "t1", aad, holdout, "why")


async def test_a_database_that_is_away_is_one_storage_neutral_error(tmp_path) -> None:
    """The layers above the unit of work catch DatabaseUnavailable, never a driver's or SQLAlchemy's error."""
    for url in ("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere", f"sqlite+aiosqlite:///{tmp_path}/no/such.db"):
        engine = create_engine(url)
        try:
            with pytest.raises(DatabaseUnavailable) as raised:
                async with UnitOfWork(session_factory(engine)) as uow:
                    await uow.tenants.touch("t1", NOW)
            assert raised.value.__cause__ is not None, url  # the driver's own error stays attached for the log
        finally:
            await engine.dispose()


async def test_a_statement_the_database_refuses_is_not_called_unavailable(sessions) -> None:
    """A refused statement is a fault of ours: trying again would not help, so it is not DatabaseUnavailable."""
    with pytest.raises(IntegrityError):
        async with UnitOfWork(sessions) as uow:
            await uow.users.upsert(UserProfile("no-such-tenant", "u1"), NOW)  # no tenant row: a foreign key fails
            await uow.commit()
