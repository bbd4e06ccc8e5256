"""Writing an NPS answer: one port, `AnswerWriter`, and its implementations side by side.

A person's first answer to an ask is the hottest write Nurture has: the answer, the ask's status, the card-answer
usage signal with its four rollups and, for a detractor, the pending CSM alert. `AnswerWriter.store_first` writes
exactly that, or nothing (None) when the case is not the common one: the ask is unknown, someone else's, closed or
already answered, or the database could not take it at once. The use case then decides through its unit of work,
which handles every case (error cards, edits, duplicates).

- `UnitOfWorkAnswerWriter`: the plain one, through the repositories; the reference the others must match.
- `PostgresAnswerWriter`: one statement (data-modifying CTEs chained through RETURNING, so the rollups lock their
  rows in the order every other writer keeps: word, feature, profile, tenant day), in autocommit, on asyncpg.
- `SqliteAnswerWriter`: one `BEGIN IMMEDIATE` transaction on a connection of its own, in place on the event loop's
  thread, which it never makes wait.

The two fast ones exist because the plain path's statements, each a round trip through the ORM, cost far more CPU
than botbuilder's own turn (docs/performance.md, bench/inbound.py). `answer_writer_for` picks one for a database
URL; tests/integration/test_answer_writers.py is the contract: every writer leaves the same rows and the same card.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.engagement.nps import Category, category
from bot.engagement.usage import WORD_DAYS, UsageEvent, epoch_day
from bot.usecases.ports import SurveysUnitOfWork
from storage.engine import is_sqlite
from storage.models import RECENT_WORDS
from storage.sql import driver_value
from storage.surveys import (
    ADD_PENDING_ALERT_SQL,
    ALERT_CONFLICT,
    ANSWER_CONFLICT,
    INSERT_ANSWER_SQL,
    AskKey,
    SubmitOutcome,
)
from storage.usage import (
    ACTIVITY_CONFLICT,
    ACTIVITY_SQL,
    FEATURES_CONFLICT,
    FEATURES_SQL,
    PROFILE_COLUMNS,
    PROFILES_CONFLICT,
    PROFILES_SQL,
    RAW_CONFLICT,
    RAW_SQL,
    TENANT_DAYS_CONFLICT,
    TENANT_DAYS_SQL,
    recent_words,
)

log = logging.getLogger(__name__)

_OLDER_WORDS = ", 0" * (RECENT_WORDS - 1)  # a profile's words before the answer's: none in one event


@dataclass(frozen=True)
class FirstAnswer:
    """A valid score (and comment) from the person named, for the ask named; `signal` is its usage signal."""

    instance_id: str
    tenant_id: str
    aad_object_id: str
    score: int
    comment: str | None
    detractor: bool
    signal: UsageEvent
    now: datetime


@dataclass(frozen=True)
class FirstAnswerStored:
    locale: str | None  # the recipient's, for the card
    alert_raised: bool


class AnswerWriter(Protocol):
    async def store_first(self, answer: FirstAnswer) -> FirstAnswerStored | None:
        """Stored, or None: nothing written (not the common case; the caller decides)."""

    async def close(self) -> None: ...


def answer_writer_for(database_url: str, uow_factory: Callable[[], SurveysUnitOfWork]) -> AnswerWriter:
    """The fastest writer for this database. The plain one where there is no other: PostgreSQL through another
    driver than asyncpg; an in-memory SQLite database, which is one connection's own (a second would not see it)."""
    url = make_url(database_url)
    if not is_sqlite(database_url):
        if url.get_driver_name() == "asyncpg":
            return PostgresAnswerWriter(database_url)
        return UnitOfWorkAnswerWriter(uow_factory)
    path = url.database
    if not path or path == ":memory:":
        return UnitOfWorkAnswerWriter(uow_factory)
    return SqliteAnswerWriter(path)


# -- plain: through the unit of work ---------------------------------------------------------------------------------


class UnitOfWorkAnswerWriter:
    """The reference writer: the repositories' statements in one unit of work (any that bot.usecases.ports
    describes: the real one, or a test's in-memory one)."""

    def __init__(self, uow_factory: Callable[[], SurveysUnitOfWork]) -> None:
        self.uow_factory = uow_factory

    async def store_first(self, answer: FirstAnswer) -> FirstAnswerStored | None:
        async with self.uow_factory() as uow:
            found = await uow.surveys.answering(answer.instance_id)
            if found is None:
                return None
            instance, owner, existing = found
            mine = owner.aad_object_id == answer.aad_object_id and owner.tenant_id == answer.tenant_id
            if not mine or existing is not None or answer.now > instance.expires_at:
                return None
            result = await uow.surveys.submit(
                instance, answer.aad_object_id, answer.score, answer.comment, answer.now, grace_until=answer.now
            )
            if result.outcome is not SubmitOutcome.CREATED:  # another click stored it first
                return None
            raised = await record_answered(uow, instance, answer.aad_object_id, answer.score, answer.signal, answer.now)
            await uow.commit()
        return FirstAnswerStored(locale=owner.locale, alert_raised=raised)

    async def close(self) -> None:
        """Nothing of its own to close: the unit of work's engine belongs to the caller."""


async def record_answered(
    uow: SurveysUnitOfWork, instance: AskKey, aad_object_id: str, score: int, signal: UsageEvent | None, now: datetime
) -> bool:
    """What follows a stored or changed answer: the ask is answered, a first answer (`signal` given) counts as use
    of the bot, and a detractor's answer raises a pending CSM alert (an edit updates or withdraws one that no alert
    run took yet). True when that alert is new."""
    await uow.surveys.set_status(instance.id, "answered")
    if signal is not None:
        await uow.usage.record([signal], now)
    if category(score) is not Category.DETRACTOR:  # an edit away from 0–6 pages no CSM, if no alert run saw it yet
        await uow.surveys.withdraw_pending_alert("detractor", instance.id)
        return False
    if await uow.surveys.add_pending_alert("detractor", instance, aad_object_id, score, now):
        return True
    await uow.surveys.rescore_pending_alert("detractor", instance.id, score)  # an edit within 0–6: the newest
    return False


# -- PostgreSQL: one statement ---------------------------------------------------------------------------------------

_ONE_STATEMENT = f"""
WITH ask AS (
    SELECT i.id, i.tenant_id, u.locale FROM survey_instances i JOIN users u ON u.id = i.user_id
    WHERE i.id = :instance_id AND u.aad_object_id = :aad_object_id AND u.tenant_id = :tenant_id
    AND i.expires_at >= CAST(:now AS timestamptz)
), answer AS (
    INSERT INTO nps_answers (survey_instance_id, tenant_id, aad_object_id, score, comment, answered_at, updated_at,
        edits)
    SELECT id, tenant_id, :aad_object_id, CAST(:score AS smallint), CAST(:comment AS text),
        CAST(:now AS timestamptz), CAST(:now AS timestamptz), 0 FROM ask
    {ANSWER_CONFLICT} RETURNING survey_instance_id, tenant_id
), answered AS (
    UPDATE survey_instances SET status = 'answered' WHERE id IN (SELECT survey_instance_id FROM answer)
), alert AS (
    INSERT INTO pending_alerts (kind, tenant_id, survey_instance_id, aad_object_id, score, status, created_at)
    SELECT 'detractor', tenant_id, survey_instance_id, :aad_object_id, CAST(:score AS smallint), 'pending',
        CAST(:now AS timestamptz) FROM answer WHERE CAST(:detractor AS boolean)
    {ALERT_CONFLICT} RETURNING id
), event AS (
    INSERT INTO usage_events (tenant_id, aad_object_id, name, occurred_at, day, received_at)
    SELECT CAST(:signal_tenant AS varchar), CAST(:signal_user AS varchar), CAST(:signal_name AS varchar),
        CAST(:signal_at AS timestamptz), CAST(:signal_day AS date), CAST(:now AS timestamptz) FROM answer
    {RAW_CONFLICT} RETURNING tenant_id, aad_object_id, name, occurred_at
), active AS (
    INSERT INTO usage_activity (tenant_id, aad_object_id, word, bits, added)
    SELECT tenant_id, aad_object_id, CAST(:word AS integer), CAST(:bit AS bigint), CAST(:bit AS bigint) FROM event
    {ACTIVITY_CONFLICT} RETURNING tenant_id, aad_object_id, added
), feature AS (
    INSERT INTO usage_features (tenant_id, aad_object_id, name, total, first_at, last_at)
    SELECT e.tenant_id, e.aad_object_id, e.name, 1, e.occurred_at, e.occurred_at FROM event e JOIN active a
        ON a.tenant_id = e.tenant_id AND a.aad_object_id = e.aad_object_id
    {FEATURES_CONFLICT} RETURNING tenant_id, aad_object_id
), profile AS (
    INSERT INTO usage_profiles ({PROFILE_COLUMNS})
    SELECT f.tenant_id, f.aad_object_id, CAST(:signal_at AS timestamptz), CAST(:signal_at AS timestamptz), 1,
        CAST(:word AS integer), CAST(:bit AS bigint){_OLDER_WORDS}
        FROM feature f
    {PROFILES_CONFLICT} RETURNING tenant_id, aad_object_id
), tenant_day AS (
    INSERT INTO tenant_usage_daily (tenant_id, day, active_users, events)
    SELECT p.tenant_id, CAST(:signal_day AS date), CASE WHEN a.added <> 0 THEN 1 ELSE 0 END, 1
        FROM profile p JOIN active a ON a.tenant_id = p.tenant_id AND a.aad_object_id = p.aad_object_id
    {TENANT_DAYS_CONFLICT}
)
SELECT ask.locale, EXISTS (SELECT 1 FROM answer) AS stored, EXISTS (SELECT 1 FROM alert) AS raised FROM ask
"""


class PostgresAnswerWriter:
    """One statement in autocommit, on a small asyncpg pool of its own.

    Its own pool because checking a connection out of SQLAlchemy's pool and back cost more CPU than the statement,
    and the main pool pings on every checkout; connections are not reset on release either (no round trip), since
    this statement leaves no session state. Whatever goes wrong on the way writes nothing and leaves the answer to
    the unit-of-work path, whose pool pings; a connection found lost is tried once more on another first. Trying
    again is safe: if the statement did commit before its connection went, the second try finds the answer there
    and writes nothing, and the unit of work shows it.
    """

    POOL_SIZE = 8

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        dialect = url.get_dialect()()
        _, kwargs = dialect.create_connect_args(url)
        self.connect_kwargs = {k: v for k, v in kwargs.items() if k not in _SQLALCHEMY_ONLY}
        compiled = text(_ONE_STATEMENT).compile(dialect=dialect)
        self.sql = compiled.string
        self.order = tuple(compiled.positiontup or ())
        self.pool: asyncpg.Pool | None = None
        self.opening = asyncio.Lock()

    async def store_first(self, answer: FirstAnswer) -> FirstAnswerStored | None:
        values = _parameters(answer)
        arguments = [values[name] for name in self.order]
        for attempt in (1, 2):
            try:
                pool = self.pool or await self._open()
                async with pool.acquire() as connection:
                    row = await connection.fetchrow(self.sql, *arguments)
                break
            except _LOST as exc:  # a connection the server dropped (a restart): asyncpg replaces it on release
                if attempt == 2:
                    log.warning("first answer left to the unit of work: %r", exc)
                    return None
            except (asyncio.TimeoutError, asyncpg.PostgresError) as exc:  # one statement: nothing was written
                log.warning("first answer left to the unit of work: %r", exc)
                return None
        if row is None or not row["stored"]:
            return None
        return FirstAnswerStored(locale=row["locale"], alert_raised=bool(row["raised"]))

    async def _open(self) -> asyncpg.Pool:
        async with self.opening:
            if self.pool is None:
                self.pool = await asyncpg.create_pool(
                    min_size=0, max_size=self.POOL_SIZE, reset=_keep_session, timeout=10, **self.connect_kwargs
                )
        return self.pool

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None


# what a connection the server dropped raises: the first use after a restart meets the server's goodbye
_LOST = (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.PostgresConnectionError)
_SQLALCHEMY_ONLY = {"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"}


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: the pool's statement sets no session state (asyncpg would run RESET ALL and more)."""


# -- SQLite: in place, never waiting ---------------------------------------------------------------------------------

_ASK_SQLITE = (
    "SELECT u.locale FROM survey_instances i JOIN users u ON u.id = i.user_id WHERE i.id = :instance_id"
    " AND u.aad_object_id = :aad_object_id AND u.tenant_id = :tenant_id AND i.expires_at >= :now"
)
_ANSWERED_SQLITE = "UPDATE survey_instances SET status = 'answered' WHERE id = :instance_id"


class SqliteAnswerWriter:
    """On the event loop's thread, with a connection of its own that never waits there.

    A hop to a thread and back cost more CPU than the transaction itself, so the statements run in place, and
    nothing on the loop waits for the disk or a lock:
    - the connection's busy timeout is zero: while another connection holds the write lock, nothing is written here
      and the answer is left to the unit of work, which waits on aiosqlite's thread;
    - it never checkpoints (`wal_autocheckpoint=0`: a checkpoint copies pages into the database file and syncs it);
      after every CHECKPOINT_EVERY answers a passive checkpoint runs on a thread with a connection of its own.
    What is left is SQLite's own work and its writes into the operating system's cache (a commit does not sync the
    write-ahead log with synchronous=NORMAL).
    """

    CHECKPOINT_EVERY = 50  # answers per checkpoint, about as many pages as SQLite's own default (every 1,000)

    def __init__(self, path: str) -> None:
        self.path = path
        self.connection: sqlite3.Connection | None = None
        self.checkpoints = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nurture-checkpoint")
        self.checkpointer: sqlite3.Connection | None = None  # used on the checkpoint thread only
        self.checkpointing: asyncio.Future[None] | None = None
        self.since_checkpoint = 0

    async def store_first(self, answer: FirstAnswer) -> FirstAnswerStored | None:
        stored = self._store(_parameters(answer, sqlite=True))
        if stored is not None:
            self.since_checkpoint += 1
            if self.since_checkpoint >= self.CHECKPOINT_EVERY and self.checkpointing is None:
                self.since_checkpoint = 0
                self.checkpointing = asyncio.get_running_loop().run_in_executor(self.checkpoints, self._checkpoint)
                self.checkpointing.add_done_callback(self._checkpointed)
        return stored

    async def close(self) -> None:
        if self.checkpointing is not None:
            await self.checkpointing
        self.checkpoints.shutdown(wait=True)
        if self.checkpointer is not None:
            self.checkpointer.close()
            self.checkpointer = None
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _connect(self) -> sqlite3.Connection:
        if self.connection is None:
            # storage.engine's settings but two: no waiting for locks, no checkpoints (see above)
            connection = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA wal_autocheckpoint=0")
            self.connection = connection
        return self.connection

    def _store(self, values: dict[str, Any]) -> FirstAnswerStored | None:
        connection = None
        try:
            connection = self._connect()
            connection.execute("BEGIN IMMEDIATE")
            stored = _store_sqlite(connection, values)
            connection.execute("COMMIT" if stored else "ROLLBACK")
            return stored
        except sqlite3.Error as exc:  # another writer holds the lock; disk full, no file …: nothing was written
            busy = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY  # expected now and then: info only
            log.log(logging.INFO if busy else logging.WARNING, "first answer left to the unit of work: %s", exc)
            return None
        finally:
            if connection is not None and connection.in_transaction:
                connection.execute("ROLLBACK")

    def _checkpoint(self) -> None:
        """On the checkpoint thread: copy what the log holds into the database file, waiting for nobody.

        The connection stays open from one checkpoint to the next: opening one reads and parses the whole schema,
        which costs far more CPU than the checkpoint's own statement."""
        if self.checkpointer is None:
            # one thread only (the executor's single worker); sqlite3 cannot tell that it is the same one each time
            self.checkpointer = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self.checkpointing = None
        if not done.cancelled() and done.exception() is not None:
            log.warning("checkpoint after first answers failed: %s", done.exception())


def _store_sqlite(connection: sqlite3.Connection, v: dict[str, Any]) -> FirstAnswerStored | None:
    ask = connection.execute(_ASK_SQLITE, v).fetchone()
    if ask is None:
        return None
    answer = {**v, "survey_instance_id": v["instance_id"]}
    if connection.execute(INSERT_ANSWER_SQL, answer).fetchone() is None:
        return None
    connection.execute(_ANSWERED_SQLITE, v)
    person = {"tenant_id": v["signal_tenant"], "aad_object_id": v["signal_user"]}
    event = {**person, "name": v["signal_name"], "occurred_at": v["signal_at"], "day": v["signal_day"]}
    if connection.execute(RAW_SQL, {**event, "received_at": v["now"]}).fetchone() is not None:
        (added,) = connection.execute(ACTIVITY_SQL, {**person, "word": v["word"], "bits": v["bit"]}).fetchone()
        at = v["signal_at"]
        connection.execute(
            FEATURES_SQL, {**person, "name": v["signal_name"], "total": 1, "first_at": at, "last_at": at}
        )
        profile = {"first_seen_at": at, "last_seen_at": at, "events": 1} | recent_words({v["word"]: v["bit"]})
        connection.execute(PROFILES_SQL, {**person, **profile})
        new_day = 1 if added else 0
        day = {"tenant_id": v["signal_tenant"], "day": v["signal_day"], "active_users": new_day, "events": 1}
        connection.execute(TENANT_DAYS_SQL, day)
    raised = False
    if v["detractor"]:
        alert = {**answer, "kind": "detractor"}
        raised = connection.execute(ADD_PENDING_ALERT_SQL, alert).fetchone() is not None
    return FirstAnswerStored(locale=ask[0], alert_raised=raised)


# -- both ------------------------------------------------------------------------------------------------------------


def _parameters(answer: FirstAnswer, *, sqlite: bool = False) -> dict[str, Any]:
    """Named values for either database, as its driver takes them."""
    signal = answer.signal
    day = epoch_day(signal.day)
    postgres = not sqlite
    return {
        "instance_id": answer.instance_id,
        "tenant_id": answer.tenant_id,
        "aad_object_id": answer.aad_object_id,
        "score": answer.score,
        "comment": answer.comment,
        "detractor": answer.detractor,
        "now": driver_value(answer.now, postgres),
        "signal_tenant": signal.tenant_id,
        "signal_user": signal.aad_object_id,
        "signal_name": signal.name,
        "signal_at": driver_value(signal.occurred_at, postgres),
        "signal_day": driver_value(signal.day, postgres),
        "word": day // WORD_DAYS,
        "bit": 1 << day % WORD_DAYS,
    }
