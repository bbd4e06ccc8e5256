"""Commands that run Nurture: `serve`, `deliver`, and the database migrations (`db upgrade`, `db downgrade`)."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from bot.cli.common import (
    EXIT_CONFIG,
    app,
    bot_settings,
    console,
    db_app,
    load_settings,
    log,
    migrate,
    migrate_down,
    redacted,
    require_current_schema,
)

if TYPE_CHECKING:
    from bot.cli.common import UowFactory
    from bot.usecases.delivery.worker import DeliveryWorker


def listen_host(requested: str | None, *, dev_mode: bool) -> str:
    """The interface `serve` listens on: the one asked for; else, in dev mode, where tokens are not checked, this
    machine only; else every interface (a container or App Service must be reachable from outside)."""
    if requested:
        return requested
    return "127.0.0.1" if dev_mode else "0.0.0.0"


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (127.0.0.1 in dev mode, 0.0.0.0 otherwise).")
    ] = None,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3978,
) -> None:
    """Run the web app (Bot Framework endpoint, usage ingestion, health check)."""
    from aiohttp import web

    from bot.app import create_app
    from bot.telemetry import configure_telemetry

    settings = bot_settings()
    from bot.campaigns_file import load_campaigns
    from bot.config import ConfigError

    try:
        campaigns = load_campaigns(settings.campaigns)  # a bad campaigns file stops start-up with its reason
    except ConfigError as exc:
        typer.echo(f"nurture: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    configure_telemetry()
    if settings.dev_mode:
        tenants = "only NURTURE_ALLOWED_TENANTS are" if settings.allowed_tenants else "any tenant is"
        log.warning("DEV MODE: inbound tokens are NOT checked and %s accepted. Never expose this server.", tenants)
    migrate(settings)
    web.run_app(
        create_app(settings, campaigns=campaigns),
        host=listen_host(host, dev_mode=settings.dev_mode),
        port=port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        access_log=None,
        print=lambda message: log.info("%s", message),
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations (serve also does this at start)."""

    settings = load_settings()
    migrate(settings, revision)
    console.print(f"database at revision {revision}: {redacted(settings.database_url)}", highlight=False)


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. base.")]) -> None:
    """Revert migrations down to REVISION."""
    settings = load_settings()
    migrate_down(settings, revision)
    console.print(f"database at revision {revision}", highlight=False)


@app.command()
def deliver(
    workers: Annotated[int | None, typer.Option(help="Worker count (default NURTURE_DELIVERY_WORKERS).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Run delivery workers alone (no web app): send queued messages within Teams' limits until stopped."""
    import signal

    from bot import tuning
    from bot.app import app_installer, card_sender, delivery_crew
    from bot.clock import utc_now
    from bot.teams.adapter import build_adapter
    from storage.engine import create_engine, session_factory
    from storage.uow import UnitOfWork

    settings = bot_settings()
    count = settings.delivery_workers if workers is None else workers

    async def run() -> int:
        # no ping before each transaction (three round trips on PostgreSQL): the workers retry what a lost connection
        # breaks, and the first error invalidates the pool, so a restart costs one retry, not one per connection
        engine = create_engine(settings.database_url, pool_pre_ping=False)
        try:
            await require_current_schema(engine)
        except BaseException:
            await engine.dispose()
            raise
        sessions = session_factory(engine)
        _, authentication = build_adapter(settings)
        sender = card_sender(settings, authentication)
        installer = app_installer(settings)
        crew = delivery_crew(settings, sessions, sender, installer, utc_now, f"deliver-{os.getpid()}", max(1, count))
        tuning.freeze_start_up()
        try:
            if once:
                await _drain_with_progress(crew, lambda: UnitOfWork(sessions), quiet=quiet)
            else:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, stop.set)
                await asyncio.gather(*(worker.run(stop) for worker in crew))
            async with UnitOfWork(sessions) as uow:
                return await uow.outbox.pending()
        finally:
            if installer is not None:
                await installer.close()
            await sender.close()
            await engine.dispose()

    left = asyncio.run(run())
    log.info("delivery stopped; %d message(s) still queued (`nurture deliveries` shows every outcome)", left)


async def _drain_with_progress(crew: list[DeliveryWorker], uow_factory: UowFactory, *, quiet: bool) -> None:
    """Send what is due now, with a progress bar on stderr (messages finished of those waiting at the start)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    async with uow_factory() as uow:
        total = await uow.outbox.pending()
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=quiet) as progress:
        task = progress.add_task("outbox", total=total)
        drained = asyncio.gather(*(worker.drain() for worker in crew))
        while True:
            await asyncio.wait([drained], timeout=0.5)
            async with uow_factory() as uow:
                left = await uow.outbox.pending()
            progress.update(task, completed=max(0, total - left), total=max(total, total - left))
            if drained.done():  # the bar's last word is the final count, however fast the drain was
                break
        await drained
