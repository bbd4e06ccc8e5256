"""Real databases for tests: a migrated SQLite file and a fresh PostgreSQL database per test session."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.engine import create_engine
from storage.models import Base

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> str:
    return os.environ.get("NURTURE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


async def _admin(sql: str) -> None:
    url = make_url(postgres_admin_url())
    try:
        connection = await asyncpg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database,
            timeout=10,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"PostgreSQL is required for the test suite and is not reachable at {url.render_as_string()}: {exc}. "
            "Start it, or point NURTURE_TEST_POSTGRES_URL at one."
        ) from exc
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _run(sql: str) -> None:
    """Blocking, callable from sync fixtures even while a test's event loop runs."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _admin(sql)).result()


def create_postgres_database(prefix: str = "nurture_test") -> str:
    """Create an empty database next to the admin one; returns its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _run(f'CREATE DATABASE "{name}"')
    return make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    _run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def empty_all_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
            if connection.dialect.name == "postgresql":
                await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    await connection.execute(text(f"DELETE FROM {table}"))
    finally:
        await engine.dispose()


async def row_counts(url: str) -> dict[str, int]:
    """Rows in every table the models declare (used to prove that a refused request stored nothing)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return {
                table.name: int((await connection.execute(text(f"SELECT COUNT(*) FROM {table.name}"))).scalar_one())
                for table in Base.metadata.sorted_tables
            }
    finally:
        await engine.dispose()


@asynccontextmanager
async def refusing_connections(url: str) -> AsyncIterator[None]:
    """The database refuses every new connection ("database does not allow connections"), and the ones open are cut:
    what an application sees of a server at its connection limit, or one being moved. Allowed again afterwards."""
    name = make_url(url).database
    await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        yield
    finally:
        await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
