"""What every `nurture` command shares: the command tree, settings, id checks and the database.

Nothing heavy is imported here at module level: `nurture --help` must stay quick, so each command imports what it
needs when it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bot.config import Settings
    from bot.usecases.campaigns import CampaignConfig
    from storage.uow import UnitOfWork

    UowFactory = Callable[[], UnitOfWork]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Nurture: adoption and NPS for your Teams app.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
app.add_typer(db_app, name="db")
survey_app = typer.Typer(no_args_is_help=True, help="NPS surveys.")
app.add_typer(survey_app, name="survey")
cards_app = typer.Typer(no_args_is_help=True, help="Adaptive Cards.")
app.add_typer(cards_app, name="cards")
campaigns_app = typer.Typer(no_args_is_help=True, help="Campaign results.")
app.add_typer(campaigns_app, name="campaigns")
tenant_app = typer.Typer(no_args_is_help=True, help="Tenant settings.")
app.add_typer(tenant_app, name="tenant")
usage_app = typer.Typer(no_args_is_help=True, help="Usage rollups.")
app.add_typer(usage_app, name="usage")
csm_app = typer.Typer(no_args_is_help=True, help="Customer success managers per tenant.")
app.add_typer(csm_app, name="csm")

console = Console(stderr=True)
log = logging.getLogger("nurture.cli")

EXIT_CONFIG = 2
JSON_OUTPUT = typer.Option("--json", help="Print one JSON document.")

T = TypeVar("T")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Say what went wrong in one line on stderr; raise the returned exit."""
    typer.echo(f"nurture: {message}", err=True)
    return typer.Exit(code)


def load_settings() -> Settings:
    """The settings from the environment and .env; a bad value is one line and exit 2."""
    from bot.config import ConfigError
    from bot.config import load_settings as load

    try:
        return load()
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None


def bot_settings() -> Settings:
    """Settings for commands that talk to Teams: the bot identity must be usable (exit 2 otherwise); JSON logs on."""
    from bot.config import ConfigError
    from bot.logging_setup import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)  # first: the identity check's warnings are log lines like any other
    try:
        settings.check_bot_identity()
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    return settings


def check_id(value: str, what: str) -> str:
    """A tenant or person id from the command line, in the form Nurture stores (lower case); exit 2 with a reason
    when it is not an id."""
    from bot.engagement.ids import DIRECTORY_ID, stored_id

    if not DIRECTORY_ID.fullmatch(value.strip()):
        raise fail(f"{what} must be a GUID", EXIT_CONFIG)
    return stored_id(value)


def allowed_tenant(tenant_id: str) -> str:
    """A tenant id from the command line for a command that stores something about the tenant: its stored form, if
    the tenant is on NURTURE_ALLOWED_TENANTS (exit 1 otherwise). Held to the same list as the server and `nurture
    ingest`: a typo would otherwise create a tenant that CSMs are told about, and nothing from it would be accepted."""
    from bot.policies import tenant_policy

    tenant = check_id(tenant_id, "the tenant id")
    refusal = tenant_policy(load_settings()).refusal(tenant)
    if refusal:
        raise fail(f"tenant {tenant}: {refusal} (NURTURE_ALLOWED_TENANTS): nothing was stored")
    return tenant


def campaign_config(settings: Settings) -> CampaignConfig:
    """The campaigns file as the scheduler reads it; a bad one is one line and exit 2."""
    from bot.config import ConfigError
    from bot.policies import campaign_config as config_of

    try:
        return config_of(settings)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None


def migrate(settings: Settings, revision: str = "head") -> None:
    """Apply migrations up to `revision` (`serve` and `db upgrade` only); a database that cannot be reached is one
    line and exit 1, not a traceback (a supervisor starts the process again later)."""
    from storage.migrate import upgrade

    with _reachable():
        upgrade(settings.database_url, revision)


def migrate_down(settings: Settings, revision: str) -> None:
    """Revert migrations down to `revision`, with `migrate`'s one-line errors."""
    from storage.migrate import downgrade

    with _reachable():
        downgrade(settings.database_url, revision)


def with_database(work: Callable[[UowFactory], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run `work(uow_factory)` against the configured database, which must be at the schema this version expects:
    other commands than `serve` and `db upgrade` never migrate, they say to run `nurture db upgrade` (exit 1)."""
    from storage.engine import create_engine, session_factory
    from storage.uow import UnitOfWork

    configured = settings or load_settings()
    _require_sqlite_file(configured.database_url)

    async def run() -> T:
        engine = create_engine(configured.database_url)
        try:
            await require_current_schema(engine)
            sessions = session_factory(engine)
            return await work(lambda: UnitOfWork(sessions))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _require_sqlite_file(database_url: str) -> None:
    """A SQLite file that does not exist is refused before connecting, which would create it empty."""
    from sqlalchemy.engine import make_url

    from storage.engine import is_sqlite
    from storage.schema import EXPECTED_REVISION

    path = make_url(database_url).database
    if is_sqlite(database_url) and path and path != ":memory:" and not Path(path).exists():
        raise fail(
            f"the database file {path} does not exist; this version needs {EXPECTED_REVISION}: run `nurture db upgrade`"
        )


async def require_current_schema(engine: AsyncEngine) -> None:
    """Exit 1 with one line saying to run `nurture db upgrade` unless the database is at this version's schema."""
    from storage.schema import EXPECTED_REVISION, schema_revision

    with _reachable():
        found = await schema_revision(engine)
    expected = EXPECTED_REVISION
    if found != expected:
        at = f"is at revision {found}" if found else "has no tables yet"
        raise fail(f"the database {at}; this version needs {expected}: run `nurture db upgrade`")


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """Turns "the database cannot be reached" and a revision Alembic refuses into one line and exit 1; other errors
    pass."""
    from storage.engine import DATABASE_UNAVAILABLE, database_unavailable
    from storage.schema import RevisionRefused

    try:
        yield
    except RevisionRefused as exc:
        raise fail(f"cannot migrate: {exc}") from None
    except DATABASE_UNAVAILABLE as exc:
        if not database_unavailable(exc):
            raise
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise fail(f"the database cannot be reached: {type(exc).__name__} {reason}".rstrip()) from None


def redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
