"""Engine creation with the per-database settings Nurture relies on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# execution option for a transaction that only reads (UnitOfWork.reads_only)
READS_ONLY = "nurture_reads_only"

# How long a transaction waits for SQLite's write lock before it fails with "database is locked" (milliseconds);
# a web request waits less (lock_wait), as Teams waits only so long for its answer
LOCK_WAIT_MS = 30_000
_lock_wait_ms: ContextVar[int] = ContextVar("nurture_lock_wait_ms", default=LOCK_WAIT_MS)
_BUSY_TIMEOUT = "nurture_busy_timeout_ms"  # the busy timeout a pooled SQLite connection has now


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


# What a lost or unavailable database raises: SQLAlchemy's wrapped driver errors, the network's, and the errors
# asyncpg raises while connecting, which SQLAlchemy passes on unwrapped ("the database system is shutting down").
# A wrapped driver error may also be a statement the database refused: `database_unavailable` tells them apart.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    DBAPIError,
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (one of DATABASE_UNAVAILABLE) says the database is busy or away, so the same request may
    succeed later — not that a statement was wrong, which trying again would not change."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    return isinstance(exc, DATABASE_UNAVAILABLE)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite: WAL journal, foreign keys enforced, and a busy timeout instead of instant errors."""
    if is_sqlite(url):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # delivery workers run many sends at once, each with its own transactions: connections beyond the pool would be
    # opened and closed per use (and pinged), which cost more than the sends (bench/delivery.py)
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    return create_async_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    # let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions would hide ours)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    record.info[_BUSY_TIMEOUT] = LOCK_WAIT_MS


def _sqlite_begin(connection: Any) -> None:
    """BEGIN IMMEDIATE: writers queue on the busy timeout instead of failing with "database is locked" when two
    transactions upgrade to write at once. A transaction declared to only read (READS_ONLY) takes no writer lock:
    in WAL mode readers and the one writer never wait for each other. The busy timeout is the one `lock_wait` asks
    for (set again only when the pooled connection's differs: web requests and workers share the pool)."""
    wait = _lock_wait_ms.get()
    if connection.info.get(_BUSY_TIMEOUT) != wait:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={wait}")
        connection.info[_BUSY_TIMEOUT] = wait
    connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(READS_ONLY) else "BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
