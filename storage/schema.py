"""Which schema this version of Nurture runs on, and which one a database is at, without loading Alembic.

Commands other than `serve` and `db upgrade` only check the schema; reading Alembic's scripts to learn the head would
cost more than the command's own work. tests/integration/test_migrations.py checks that EXPECTED_REVISION is
Alembic's head, so a new migration cannot be forgotten here.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

EXPECTED_REVISION = "0019"


class RevisionRefused(ValueError):
    """Alembic cannot go to the revision asked for: unknown, or not a way down (or up) from where the database is
    (raised by storage.migrate; here so that catching it loads no Alembic)."""


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None when it has no schema yet."""
    async with engine.connect() as connection:
        if not await connection.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return None
        return (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
