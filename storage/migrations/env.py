"""Alembic environment: URL from Nurture's settings (or the caller), metadata from storage.models, async engine."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection

from storage.engine import create_engine
from storage.models import Base, UtcDateTime, on_dialect

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from bot.config import load_settings

    return load_settings().database_url


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write our UtcDateTime as a plain timezone-aware DateTime, so migrations never import the models."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
        include_object=on_dialect(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":  # foreign keys were off (_run_online): check what they would have
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows that refer to nothing: {broken[:5]}")


async def _run_online() -> None:
    engine = create_engine(_database_url())
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # SQLite alters a table by copying it and dropping the old one: with foreign keys enforced, that drop
                # deletes every row that refers to the table (a downgrade through 0005 emptied users). Off while
                # migrating, as SQLite's own procedure for altering tables says; set before any transaction begins,
                # since inside one SQLite ignores it.
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None  # a checked-out connection always has one
                await driver.execute("PRAGMA foreign_keys=OFF")
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
