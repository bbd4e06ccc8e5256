"""The contract of `storage.answers.AnswerWriter`, on real SQLite and PostgreSQL.

Every writer (the plain one through the unit of work, and the one-trip one of each database) must leave exactly the
same rows and show the same card as the use case's own unit-of-work path; it must write nothing for every case that
is not a valid first answer to an open ask of one's own (the unit of work decides those), and a failure in it must
leave the answer to the unit of work instead of failing the person's click.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.engagement.asking import AskPolicy
from bot.engagement.usage import BotSignal, bot_signal
from bot.usecases.card_actions import Actor, CardActions
from bot.usecases.surveys import SurveyConfig, Surveys
from cards.verbs import Verb
from storage.answers import (
    AnswerWriter,
    FirstAnswer,
    FirstAnswerStored,
    PostgresAnswerWriter,
    SqliteAnswerWriter,
    UnitOfWorkAnswerWriter,
    answer_writer_for,
)
from storage.engine import create_engine, is_sqlite, session_factory
from storage.models import (
    NpsAnswer,
    PendingAlert,
    SurveyInstance,
    TenantUsageDaily,
    UsageActivity,
    UsageEvent,
    UsageFeature,
    UsageProfile,
)
from storage.people import UserProfile
from storage.surveys import NewAsk
from storage.uow import UnitOfWork
from tests.support.database import empty_all_tables, row_counts

NOW = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC)
TENANT = "7d1f9c1e-0000-4000-8000-00000000aaaa"
CONFIG = SurveyConfig(product_name="Contoso", policy=AskPolicy())


@dataclass(frozen=True)
class Ask:
    instance_id: str
    aad_object_id: str


class Counting:
    """A real writer, counting the answers it stored (so a test knows which path took an answer)."""

    def __init__(self, inner: AnswerWriter) -> None:
        self.inner = inner
        self.stored = 0

    async def store_first(self, answer: FirstAnswer) -> FirstAnswerStored | None:
        result = await self.inner.store_first(answer)
        self.stored += result is not None
        return result

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


class Declining:
    """A writer that never stores: every answer takes the use case's own unit-of-work path, the reference."""

    async def store_first(self, answer: FirstAnswer) -> FirstAnswerStored | None:
        return None

    async def close(self) -> None:
        """It holds no connection of its own."""


@pytest.fixture(params=["one trip", "plain"])
async def fast(
    request: pytest.FixtureRequest, database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Counting]:
    """Each writer in turn: the database's one-trip writer, then the plain one through the unit of work."""
    inner: AnswerWriter
    if request.param == "plain":
        inner = UnitOfWorkAnswerWriter(lambda: UnitOfWork(sessions))
    else:
        inner = answer_writer_for(database_url, lambda: UnitOfWork(sessions))
        assert isinstance(inner, (SqliteAnswerWriter, PostgresAnswerWriter))
    counting = Counting(inner)
    yield counting
    await counting.close()


async def make_ask(
    sessions: async_sessionmaker[AsyncSession],
    *,
    expires_at: datetime = NOW + timedelta(days=14),
    locale: str = "de-DE",
) -> Ask:
    aad = str(uuid.uuid4())
    instance = str(uuid.uuid4())
    async with UnitOfWork(sessions) as uow:
        await uow.tenants.touch(TENANT, NOW - timedelta(days=1))
        user_id = await uow.users.upsert(UserProfile(TENANT, aad, locale, "Europe/Berlin"), NOW - timedelta(days=1))
        await uow.surveys.add_instance(
            NewAsk(
                id=instance,
                tenant_id=TENANT,
                user_id=user_id,
                status="sent",
                locale=locale,
                created_at=NOW - timedelta(hours=2),
                sent_at=NOW - timedelta(hours=2),
                expires_at=expires_at,
            )
        )
        await uow.commit()
    return Ask(instance, aad)


async def answer(surveys: Surveys, ask: Ask, data: dict[str, Any], now: datetime = NOW) -> dict[str, Any]:
    actions = CardActions()
    surveys.register(actions)
    actor = Actor(TENANT, ask.aad_object_id, "en-US")
    return await actions.answer(Verb.NPS_SUBMIT.value, {"instance": ask.instance_id, **data}, actor, now)


async def rows_of(sessions: async_sessionmaker[AsyncSession], ask: Ask) -> dict[str, Any]:
    """Everything stored about one person's answer, without the ids that differ between people."""
    aad = ask.aad_object_id
    async with UnitOfWork(sessions) as uow:
        s = uow.session

        async def all_of(model: Any, *where: Any, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
            found = (await s.execute(select(model).where(*where))).scalars().all()
            hidden = {"id", "survey_instance_id", "aad_object_id", *skip}
            return [{k: v for k, v in vars(row).items() if not k.startswith("_") and k not in hidden} for row in found]

        return {
            "answers": await all_of(NpsAnswer, NpsAnswer.aad_object_id == aad),
            "status": (await s.get(SurveyInstance, ask.instance_id)).status,  # type: ignore[union-attr]
            "alerts": await all_of(PendingAlert, PendingAlert.aad_object_id == aad),
            "events": await all_of(UsageEvent, UsageEvent.aad_object_id == aad),
            "activity": await all_of(UsageActivity, UsageActivity.aad_object_id == aad),
            "features": await all_of(UsageFeature, UsageFeature.aad_object_id == aad),
            "profiles": await all_of(UsageProfile, UsageProfile.aad_object_id == aad),
        }


async def tenant_day(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with UnitOfWork(sessions) as uow:
        row = await uow.session.get(TenantUsageDaily, (TENANT, NOW.date()))
        return (row.active_users, row.events) if row else (0, 0)


def addressed_to(card: dict[str, Any], old: Ask, new: Ask) -> dict[str, Any]:
    """The card as it would read for another ask and person (the ids are unique strings: plain replacement)."""
    raw = json.dumps(card).replace(old.instance_id, new.instance_id).replace(old.aad_object_id, new.aad_object_id)
    return dict(json.loads(raw))


@pytest.mark.parametrize(
    "data",
    [
        {"score": 10},
        {"score": "8", "comment": '  Faster exports, please "quoted"  '},
        {"score": 7},
        {"score": 3, "comment": "Too slow"},
        {"score": 0},
    ],
    ids=["promoter", "passive-with-comment", "passive", "detractor-with-comment", "detractor-zero"],
)
async def test_one_trip_stores_what_the_unit_of_work_stores(
    sessions: async_sessionmaker[AsyncSession], fast: Counting, data: dict[str, Any]
) -> None:
    one_trip = Surveys(lambda: UnitOfWork(sessions), CONFIG, fast)
    unit_of_work = Surveys(lambda: UnitOfWork(sessions), CONFIG, Declining())
    first, second = await make_ask(sessions), await make_ask(sessions)

    card = await answer(one_trip, first, data)
    assert fast.stored == 1
    assert await tenant_day(sessions) == (1, 1)  # the person's day became active, with one event
    expected = await answer(unit_of_work, second, data)
    assert fast.stored == 1
    assert await tenant_day(sessions) == (2, 2)

    assert card == addressed_to(expected, second, first)
    stored, reference = await rows_of(sessions, first), await rows_of(sessions, second)
    assert stored == reference
    assert stored["status"] == "answered" and len(stored["answers"]) == 1
    assert [f["name"] for f in stored["features"]] == [BotSignal.CARD_ANSWER]
    assert len(stored["alerts"]) == (1 if int(data["score"]) <= 6 else 0)


async def test_a_second_answer_of_the_same_day_does_not_make_the_day_active_again(
    sessions: async_sessionmaker[AsyncSession], fast: Counting
) -> None:
    surveys = Surveys(lambda: UnitOfWork(sessions), CONFIG, fast)
    first = await make_ask(sessions)
    async with UnitOfWork(sessions) as uow:  # the same person, asked again
        user = await uow.users.get(TENANT, first.aad_object_id)
        assert user is not None
        second = Ask(str(uuid.uuid4()), first.aad_object_id)
        await uow.surveys.add_instance(
            NewAsk(
                id=second.instance_id,
                tenant_id=TENANT,
                user_id=user.id,
                status="sent",
                locale="de-DE",
                created_at=NOW,
                sent_at=NOW,
                expires_at=NOW + timedelta(days=1),
            )
        )
        await uow.commit()
    await answer(surveys, first, {"score": 9})
    await answer(surveys, second, {"score": 6}, NOW + timedelta(minutes=1))
    assert fast.stored == 2
    assert await tenant_day(sessions) == (1, 2)
    rows = await rows_of(sessions, first)
    assert rows["features"][0]["total"] == 2 and rows["profiles"][0]["events"] == 2
    assert rows["profiles"][0]["last_seen_at"] == NOW + timedelta(minutes=1)


async def test_every_other_case_writes_nothing_and_is_left_to_the_unit_of_work(
    sessions: async_sessionmaker[AsyncSession], fast: Counting, database_url: str
) -> None:
    mine = await make_ask(sessions)
    expired = await make_ask(sessions, expires_at=NOW - timedelta(seconds=1))
    answered = await make_ask(sessions)
    assert await fast.store_first(_first(answered, 9)) is not None
    before = await row_counts(database_url)

    cases = {
        "unknown ask": _first(Ask(str(uuid.uuid4()), mine.aad_object_id), 9),
        "someone else's ask": _first(Ask(mine.instance_id, answered.aad_object_id), 9),
        "another tenant": replace(_first(mine, 9), tenant_id="00000000-0000-0000-0000-000000000000"),
        "expired": _first(expired, 9),
        "already answered": _first(answered, 3),
    }
    for case, first in cases.items():
        assert await fast.store_first(first) is None, case
    assert await row_counts(database_url) == before


async def test_concurrent_clicks_store_one_answer_and_one_signal(
    sessions: async_sessionmaker[AsyncSession], fast: Counting
) -> None:
    surveys = Surveys(lambda: UnitOfWork(sessions), CONFIG, fast)
    ask = await make_ask(sessions)
    cards = await asyncio.gather(*(answer(surveys, ask, {"score": 2}) for _ in range(20)))
    assert fast.stored == 1  # the other nineteen found the answer there and took the unit of work's way
    assert all(card == cards[0] for card in cards)
    rows = await rows_of(sessions, ask)
    assert len(rows["answers"]) == 1 and len(rows["alerts"]) == 1 and len(rows["events"]) == 1
    assert rows["features"][0]["total"] == 1
    assert await tenant_day(sessions) == (1, 1)


async def test_a_failing_fast_path_leaves_the_answer_to_the_unit_of_work(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Any
) -> None:
    """A database the fast path cannot reach (nothing listens there; no such folder) costs the click nothing."""
    broken: AnswerWriter
    if is_sqlite(database_url):
        broken = SqliteAnswerWriter(str(tmp_path / "missing" / "nurture.db"))
    else:
        broken = PostgresAnswerWriter("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    counting = Counting(broken)
    try:
        surveys = Surveys(lambda: UnitOfWork(sessions), CONFIG, counting)
        ask = await make_ask(sessions)
        card = await answer(surveys, ask, {"score": 10})
    finally:
        await counting.close()
    assert counting.stored == 0
    expected = await answer(Surveys(lambda: UnitOfWork(sessions), CONFIG, Declining()), ask, {"score": 10})
    assert card == expected  # the second is the same answer again: the unit of work shows it unchanged
    rows = await rows_of(sessions, ask)
    assert len(rows["answers"]) == 1 and rows["status"] == "answered" and rows["features"][0]["total"] == 1


async def test_postgres_connections_cut_under_the_pool_still_store_the_answer_once(postgresql_database: str) -> None:
    """PostgreSQL only (SQLite has no server whose connections could be cut)."""
    await empty_all_tables(postgresql_database)
    engine = create_engine(postgresql_database)
    sessions = session_factory(engine)
    fast = Counting(answer_writer_for(postgresql_database, lambda: UnitOfWork(sessions)))
    try:
        surveys = Surveys(lambda: UnitOfWork(sessions), CONFIG, fast)
        first, second = await make_ask(sessions), await make_ask(sessions)
        await answer(surveys, first, {"score": 9})  # the fast path's pool now holds an open connection
        async with sessions() as session:
            await session.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        card = await answer(surveys, second, {"score": 9})
        assert fast.stored == 2  # the dropped connection was replaced and the statement tried once more
        assert card["refresh"]["userIds"] == [f"8:orgid:{second.aad_object_id}"]
        assert card["body"][0]["text"] == "Vielen Dank!"  # the recipient's thank-you (de-DE), not an error card
        rows = await rows_of(sessions, second)
        assert len(rows["answers"]) == 1 and rows["status"] == "answered" and rows["features"][0]["total"] == 1
    finally:
        await fast.close()
        await engine.dispose()


def _first(ask: Ask, score: int) -> FirstAnswer:
    return FirstAnswer(
        instance_id=ask.instance_id,
        tenant_id=TENANT,
        aad_object_id=ask.aad_object_id,
        score=score,
        comment=None,
        detractor=score <= 6,
        signal=bot_signal(TENANT, ask.aad_object_id, BotSignal.CARD_ANSWER, NOW),
        now=NOW,
    )


async def test_sqlite_never_waits_on_the_loop_for_another_writer(sqlite_database: str) -> None:
    """While another connection holds SQLite's write lock, the in-place path writes nothing at once (it runs on the
    event loop's thread); the unit of work then waits for the lock on aiosqlite's thread, as it always did."""
    await empty_all_tables(sqlite_database)
    engine = create_engine(sqlite_database)
    sessions = session_factory(engine)
    fast = answer_writer_for(sqlite_database, lambda: UnitOfWork(sessions))
    assert isinstance(fast, SqliteAnswerWriter)
    try:
        ask = await make_ask(sessions)
        writer = sqlite3.connect(str(make_url(sqlite_database).database), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        assert await fast.store_first(_first(ask, 9)) is None
        assert time.perf_counter() - started < 0.5
        surveys = Surveys(lambda: UnitOfWork(sessions), CONFIG, fast)
        clicked = asyncio.create_task(answer(surveys, ask, {"score": 9}))
        await asyncio.sleep(0.3)
        assert not clicked.done()  # waiting for the lock, off the loop
        writer.execute("COMMIT")
        writer.close()
        card = await clicked
        assert card["refresh"]["userIds"] == [f"8:orgid:{ask.aad_object_id}"]
        assert len((await rows_of(sessions, ask))["answers"]) == 1
    finally:
        await fast.close()
        await engine.dispose()


async def test_sqlite_checkpoints_run_on_a_thread_not_in_the_answer(sqlite_database: str) -> None:
    await empty_all_tables(sqlite_database)
    engine = create_engine(sqlite_database)
    sessions = session_factory(engine)
    fast = answer_writer_for(sqlite_database, lambda: UnitOfWork(sessions))
    assert isinstance(fast, SqliteAnswerWriter)
    fast.CHECKPOINT_EVERY = 3
    threads: list[str] = []
    connections: set[int] = set()
    logs: list[tuple[int, int, int]] = []  # (busy, frames in the log, frames copied) just after each checkpoint
    checkpoint = fast._checkpoint

    def recorded() -> None:
        threads.append(threading.current_thread().name)
        checkpoint()
        if fast.checkpointer is not None:
            connections.add(id(fast.checkpointer))
            logs.append(fast.checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())

    fast._checkpoint = recorded  # type: ignore[method-assign]
    try:
        asks = [await make_ask(sessions) for _ in range(7)]
        for ask in asks:
            assert await fast.store_first(_first(ask, 8)) is not None
            if fast.checkpointing is not None:
                await fast.checkpointing
        assert fast.connection is not None
        assert fast.connection.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        assert len(threads) == 2 and all(name.startswith("nurture-checkpoint") for name in threads)
        assert len(connections) == 1  # one connection, kept from one checkpoint to the next
        assert len(logs) == 2 and all(busy == 0 and 0 < copied == logged for busy, logged, copied in logs)
    finally:
        await fast.close()
        await engine.dispose()
    assert fast.checkpointer is None and fast.connection is None
