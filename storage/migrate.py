"""Run Alembic migrations from code (CLI, `serve` start-up, tests)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.schema import RevisionRefused


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "storage:migrations")
    # Alembic's ini interpolation treats % specially (URL-encoded passwords contain it)
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def _outside_event_loop(work: Callable[[], None]) -> None:
    """Alembic's env.py runs its own event loop; from inside a running one, run it on a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        work()
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(work).result()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking: apply migrations up to `revision`."""
    _outside_event_loop(lambda: _quietly(lambda: command.upgrade(alembic_config(database_url), revision)))


def _quietly(work: Callable[[], None]) -> None:
    """SQLAlchemy cannot reflect SQLite's expression index on users (ix_users_audience, migration 0014) and warns
    whenever a migration reflects the table; the index is the models' own and stays, so the warning only alarms.
    A revision Alembic refuses becomes RevisionRefused, with Alembic's own sentence."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        try:
            work()
        except CommandError as exc:
            raise RevisionRefused(str(exc)) from None


def downgrade(database_url: str, revision: str = "base") -> None:
    _outside_event_loop(lambda: _quietly(lambda: command.downgrade(alembic_config(database_url), revision)))


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
