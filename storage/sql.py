"""SQL helpers the repositories share: upserts written once for both databases, multi-row inserts, driver values."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Row, TextClause, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def upsert_sql(sql: str, **types: Any) -> TextClause:
    """An INSERT … ON CONFLICT written once in the SQL SQLite and PostgreSQL share, with its typed parameters.

    SQLAlchemy cannot cache the dialects' ON CONFLICT constructs (they have no cache key): built per call they are
    compiled per call, which cost more than the database did on the hot paths (a card answer, a usage signal).
    """
    return text(sql).bindparams(*(bindparam(name, type_=kind) for name, kind in types.items()))


ROWS_PER_INSERT = 500  # rows a multi-row INSERT takes (at most 9 parameters each: far below either database's limit)


def numbered_rows(columns: Sequence[str], rows: int, *constants: str) -> str:
    """VALUES rows for a multi-row INSERT: each row's own parameters, numbered (`:kind0`, `:kind1`, …), then SQL
    every row shares (`constants`)."""
    return ", ".join("(" + ", ".join([*(f":{c}{i}" for c in columns), *constants]) + ")" for i in range(rows))


async def insert_many(
    session: AsyncSession, statement: Callable[[int], TextClause], rows: Sequence[dict[str, Any]], **shared: Any
) -> list[Row[Any]]:
    """What `statement(n)`'s RETURNING gives for `rows`, inserted ROWS_PER_INSERT at a statement (in no particular
    order): a campaign run writes hundreds of thousands of rows, and one statement each cost a round trip each."""
    found: list[Row[Any]] = []
    for start in range(0, len(rows), ROWS_PER_INSERT):
        part = rows[start : start + ROWS_PER_INSERT]
        values = dict(shared)
        for i, row in enumerate(part):
            values |= {f"{name}{i}": value for name, value in row.items()}
        found += (await session.execute(statement(len(part)), values)).all()
    return found


def driver_value(value: Any, postgres: bool) -> Any:
    """A parameter as the driver takes it, for SQL run on the driver itself: SQLite stores moments as UTC text and
    days as ISO text, the way storage.models writes them."""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC)
        # SQLAlchemy's SQLite DATETIME text: four-digit year, six-digit fraction (isoformat is quicker than strftime)
        return moment if postgres else moment.replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, date) and not postgres:
        return value.isoformat()
    return value


def on_postgres(session: AsyncSession) -> bool:
    """Whether the session talks to PostgreSQL (else SQLite): the few places whose SQL or locking differ ask this."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def insert_for(session: AsyncSession, model: Any) -> Any:
    """The dialect's INSERT (of a model or a table), which knows ON CONFLICT on both SQLite and PostgreSQL."""
    return postgresql.insert(model) if on_postgres(session) else sqlite.insert(model)
