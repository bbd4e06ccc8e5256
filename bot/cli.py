"""The `nurture` command line (also `python -m bot`)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from bot.config import ConfigError, Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Nurture: adoption and NPS for your Teams app.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
app.add_typer(db_app, name="db")
console = Console(stderr=True)
log = logging.getLogger("nurture.cli")

EXIT_CONFIG = 2


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(f"nurture: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3978,
) -> None:
    """Run the web app (Bot Framework endpoint, usage ingestion, health check)."""
    from aiohttp import web

    from bot.app import create_app
    from bot.logging_setup import configure_logging
    from storage.migrate import upgrade

    settings = _settings()
    try:
        settings.check_bot_identity()
    except ConfigError as exc:
        typer.echo(f"nurture: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    configure_logging(settings.log_level)
    if settings.dev_mode:
        log.warning("DEV MODE: inbound tokens are NOT checked and any tenant is accepted. Never expose this server.")
    upgrade(settings.database_url)
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        access_log=None,
        print=lambda message: log.info("%s", message),
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations (serve also does this at start)."""
    from storage.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    console.print(f"database at revision {revision}: {_redacted(settings.database_url)}", highlight=False)


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. base.")]) -> None:
    """Revert migrations down to REVISION."""
    from storage.migrate import downgrade

    settings = _settings()
    downgrade(settings.database_url, revision)
    console.print(f"database at revision {revision}", highlight=False)


@app.command()
def demo(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False) -> None:
    """Load synthetic tenants and users into the configured database (idempotent)."""
    from bot.demo import load_demo
    from storage.engine import create_engine, session_factory
    from storage.migrate import upgrade
    from storage.uow import UnitOfWork

    settings = _settings()
    upgrade(settings.database_url)

    async def run() -> dict[str, int]:
        engine = create_engine(settings.database_url)
        try:
            async with UnitOfWork(session_factory(engine)) as uow:
                summary = await load_demo(uow, datetime.now(UTC))
        finally:
            await engine.dispose()
        return {"tenants": summary.tenants, "users": summary.users}

    result = asyncio.run(run())
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        Console().print(f"demo data loaded: {result['tenants']} tenants, {result['users']} users")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app(prog_name="nurture")
