"""Engine creation with the per-database settings Nurture relies on."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only

# execution option for a transaction that only reads (UnitOfWork.reads_only)
READS_ONLY = "nurture_reads_only"

# How long a transaction waits for SQLite's write lock before it fails with "database is locked" (milliseconds);
# a web request waits less (lock_wait), as Teams waits only so long for its answer
LOCK_WAIT_MS = 30_000
_lock_wait_ms: ContextVar[int] = ContextVar("nurture_lock_wait_ms", default=LOCK_WAIT_MS)
# The wait goes by short tries (_sqlite_begin): each waits at most this long inside SQLite, on aiosqlite's thread,
# holding the connection; between tries the event loop waits
LOCK_TRY_MS = 100
LOCK_PAUSE_SECONDS = 0.01


@contextmanager
def lock_wait(seconds: float) -> Iterator[None]:
    """Within this block (this task and what it awaits), a SQLite transaction waits at most `seconds` for another
    one's write lock, then fails; nothing it did is kept. PostgreSQL needs no such bound: a query cancelled by an
    asyncio timeout is cancelled on the server, and its transaction rolled back."""
    token = _lock_wait_ms.set(max(0, int(seconds * 1000)))
    try:
        yield
    finally:
        _lock_wait_ms.reset(token)


class DatabaseUnavailable(Exception):
    """The database is busy or away: the same work may succeed later, and nothing of it was kept.

    The unit of work raises it in place of the driver's or SQLAlchemy's error, so the layers above (the web
    endpoints, the Teams handler) need not know which database library is underneath."""


# What a busy, lost or unavailable database may raise: SQLAlchemy's wrapped driver errors, the network's, and the
# errors asyncpg raises while connecting, which SQLAlchemy passes on unwrapped ("the database system is shutting
# down", "too many connections", "database does not allow connections"). A wrapped driver error may also be a
# statement the database refused: `database_unavailable` tells the two apart.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    DBAPIError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)

# SQLSTATE classes that say "not now" rather than "never": connection trouble (08), a transaction rolled back to be
# tried again (40: deadlock, serialization), no resources (53: too many connections, disk full), a lock or state not
# there yet (55: lock not available, database not accepting connections), an operator's intervention (57: shutdown,
# a cancelled query), the server's own I/O trouble (58)
_NOT_NOW = ("08", "40", "53", "55", "57", "58")


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (one of DATABASE_UNAVAILABLE) says the database is busy or away, so the same request may
    succeed later — not that a statement was wrong, which trying again would not change."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError)):
            return True
        return str(getattr(exc.orig, "sqlstate", None) or "")[:2] in _NOT_NOW
    return isinstance(exc, DATABASE_UNAVAILABLE)  # raised while connecting: nothing was said about a statement


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite: WAL journal, foreign keys enforced, and a busy timeout instead of instant errors."""
    if is_sqlite(url):
        kwargs.setdefault("connect_args", {"timeout": LOCK_TRY_MS / 1000})
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # delivery workers run many sends at once, each with its own transactions: connections beyond the pool would be
    # opened and closed per use (and pinged), which cost more than the sends themselves
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    return create_async_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions would hide ours)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={LOCK_TRY_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """BEGIN IMMEDIATE: writers queue for the write lock instead of failing with "database is locked" when two
    transactions upgrade to write at once; for as long as `lock_wait` says. A transaction declared to only read
    (READS_ONLY) takes no writer lock: in WAL mode readers and the one writer never wait for each other.

    The wait is short tries with the event loop's pauses between them, not one long busy timeout: a connection
    waiting inside SQLite holds its mutex, and anything else that needs the connection meanwhile waits too — the
    garbage collector finalizing a statement a failed request left on it would stop the whole event loop. The
    statement goes to the driver directly: a try that fails then leaves no cursor behind."""
    if connection.get_execution_options().get(READS_ONLY):
        connection.exec_driver_sql("BEGIN")
        return
    driver = connection.connection.driver_connection  # aiosqlite's connection
    give_up = time.monotonic() + _lock_wait_ms.get() / 1000
    while True:
        try:
            await_only(_execute(driver, "BEGIN IMMEDIATE"))
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() >= give_up:
                raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        await_only(asyncio.sleep(LOCK_PAUSE_SECONDS))


async def _execute(driver: Any, statement: str) -> None:
    cursor = await driver.execute(statement)
    await cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
