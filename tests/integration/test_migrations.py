"""Migrations: upgrade head then downgrade base on both databases, and the schema matches the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from storage.engine import create_engine
from storage.migrate import current_revision, downgrade, head_revision, upgrade
from storage.models import Base
from tests.support.database import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = create_postgres_database("nurture_migrate")
        yield url
        drop_postgres_database(url)


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_then_downgrade(fresh_url: str) -> None:
    upgrade(fresh_url)
    engine = create_engine(fresh_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()
    assert {t.name for t in Base.metadata.sorted_tables} <= await _tables(fresh_url)

    downgrade(fresh_url, "base")
    assert await _tables(fresh_url) <= {"alembic_version"}

    upgrade(fresh_url)  # and back up again: downgrade left nothing behind that blocks it
    assert {t.name for t in Base.metadata.sorted_tables} <= await _tables(fresh_url)


async def test_migrated_schema_matches_models(fresh_url: str) -> None:
    upgrade(fresh_url)
    engine = create_engine(fresh_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_database: str) -> None:
    engine = create_engine(sqlite_database)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    finally:
        await engine.dispose()
