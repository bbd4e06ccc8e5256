"""The `nurture` command line (also `python -m bot`)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bot.config import ConfigError, Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Nurture: adoption and NPS for your Teams app.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
app.add_typer(db_app, name="db")
survey_app = typer.Typer(no_args_is_help=True, help="NPS surveys.")
app.add_typer(survey_app, name="survey")
cards_app = typer.Typer(no_args_is_help=True, help="Adaptive Cards.")
app.add_typer(cards_app, name="cards")
console = Console(stderr=True)
log = logging.getLogger("nurture.cli")

EXIT_CONFIG = 2


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(f"nurture: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def check_id(value: str, what: str) -> str:
    """A tenant or person id from the command line, in the form Nurture stores (lower case); exit 2 with a reason
    when it is not an id."""
    from bot.engagement.ids import DIRECTORY_ID, stored_id

    if not DIRECTORY_ID.fullmatch(value.strip()):
        typer.echo(f"nurture: {what} must be a GUID", err=True)
        raise typer.Exit(EXIT_CONFIG)
    return stored_id(value)


def _migrated(settings: Settings, revision: str = "head") -> None:
    """Apply migrations up to `revision`; a database that cannot be reached is one line and exit 1, not a traceback
    (a supervisor starts the process again later)."""
    from storage.engine import DATABASE_UNAVAILABLE, database_unavailable
    from storage.migrate import upgrade

    try:
        upgrade(settings.database_url, revision)
    except DATABASE_UNAVAILABLE as exc:
        if not database_unavailable(exc):
            raise
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        typer.echo(f"nurture: the database cannot be reached: {type(exc).__name__} {reason}".rstrip(), err=True)
        raise typer.Exit(1) from None


def _bot_settings() -> Settings:
    """Settings for commands that talk to Teams: the bot identity must be usable (exit 2 otherwise); JSON logs on."""
    from bot.logging_setup import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)  # first: the identity check's warnings are log lines like any other
    try:
        settings.check_bot_identity()
    except ConfigError as exc:
        typer.echo(f"nurture: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    return settings


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

    settings = _bot_settings()
    from bot.campaigns_file import load_campaigns

    try:
        campaigns = load_campaigns(settings.campaigns)  # a bad campaigns file stops start-up with its reason
    except ConfigError as exc:
        typer.echo(f"nurture: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    configure_telemetry()
    if settings.dev_mode:
        log.warning("DEV MODE: inbound tokens are NOT checked and any tenant is accepted. Never expose this server.")
    _migrated(settings)
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

    settings = _settings()
    _migrated(settings, revision)
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
    from storage.uow import UnitOfWork

    settings = _settings()
    _migrated(settings)

    async def run() -> dict[str, int]:
        engine = create_engine(settings.database_url)
        try:
            async with UnitOfWork(session_factory(engine)) as uow:
                summary = await load_demo(uow, datetime.now(UTC))
        finally:
            await engine.dispose()
        return {"tenants": summary.tenants, "users": summary.users, "events": summary.events}

    result = asyncio.run(run())
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        Console().print(
            f"demo data loaded: {result['tenants']} tenants, {result['users']} users, {result['events']} usage events"
        )


@app.command()
def nps(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant id.")] = None,
    by: Annotated[str | None, typer.Option(help="Group by week, month or quarter.")] = None,
    min_answers: Annotated[int | None, typer.Option(help="Show no score below this many answers.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """NPS with its 95 % interval, response rate and period-over-period change."""
    from bot.engagement.periods import Period
    from bot.usecases.reports import nps_report, report_json
    from storage.engine import create_engine, session_factory
    from storage.uow import UnitOfWork

    settings = _settings()
    tenant = check_id(tenant, "--tenant") if tenant else None
    try:
        period = Period(by) if by else None
    except ValueError:
        typer.echo("nurture: --by must be week, month or quarter", err=True)
        raise typer.Exit(EXIT_CONFIG) from None

    async def run() -> Any:
        engine = create_engine(settings.database_url)
        try:
            sessions = session_factory(engine)
            return await nps_report(
                lambda: UnitOfWork(sessions),
                tenant_id=tenant,
                by=period,
                min_answers=min_answers or settings.nps_min_answers,
            )
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    if as_json:
        sys.stdout.write(json.dumps(report_json(report)) + "\n")
        return
    from bot.reports_view import print_report

    print_report(Console(), report)


@survey_app.command("send")
def survey_send(
    user: Annotated[list[str] | None, typer.Option("--user", help="AAD object id (repeatable).")] = None,
    tenant: Annotated[str | None, typer.Option(help="Every user of this tenant id.")] = None,
    force: Annotated[bool, typer.Option(help="Skip the timing rules (never consent or reachability).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say who would be asked and why.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Queue an NPS ask now for a user or a tenant, following the ask rules unless --force.

    The delivery workers of `nurture serve` (or `nurture deliver`) send what is queued, within Teams' limits.
    """
    from bot.app import survey_config, utc_now
    from bot.usecases.surveys import AskResult, Surveys
    from storage.answers import UnitOfWorkAnswerWriter
    from storage.models import User

    settings = _settings()
    if not user and not tenant:
        typer.echo("nurture: name --user AAD_ID or --tenant TENANT_ID", err=True)
        raise typer.Exit(EXIT_CONFIG)
    people = [check_id(aad, "--user") for aad in user or []]
    tenant = check_id(tenant, "--tenant") if tenant else None

    async def work(uow_factory: Any) -> list[AskResult]:
        targets: list[User] = []
        async with uow_factory() as uow:
            for aad in people:
                targets += await uow.users.find_by_aad(aad)
            if tenant:
                targets += await uow.users.in_tenant(tenant)
        surveys = Surveys(uow_factory, survey_config(settings), UnitOfWorkAnswerWriter(uow_factory))
        now = utc_now()
        if dry_run:
            return [
                AskResult(u.tenant_id, u.aad_object_id, d) for u, d in await surveys.plan(targets, now, force=force)
            ]
        return await surveys.ask(targets, now, force=force)

    results = _run_in_uow(work)
    rows = [
        {
            "tenant": r.tenant_id,
            "user": r.aad_object_id,
            "ask": r.decision.ask,
            "reason": r.decision.reason,
            "instance": r.instance_id,
            "queued": r.queued,
        }
        for r in results
    ]
    if as_json:
        sys.stdout.write(json.dumps({"dry_run": dry_run, "results": rows}) + "\n")
    else:
        from rich.table import Table

        table = Table("tenant", "user", "ask", "reason", "queued")
        for row in rows:
            table.add_row(
                str(row["tenant"]),
                str(row["user"]),
                "yes" if row["ask"] else "no",
                str(row["reason"]),
                "yes" if row["queued"] else "-",
            )
        Console().print(table)
    if not results:
        typer.echo("nurture: no such users", err=True)
        raise typer.Exit(1)


@survey_app.command("close-expired")
def survey_close_expired(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Replace unanswered, expired survey cards in people's chats with "this survey has closed" (serve does it too)."""
    from bot.app import survey_config, utc_now
    from bot.usecases.surveys import Surveys
    from storage.answers import UnitOfWorkAnswerWriter

    settings = _settings()

    async def work(uow_factory: Any) -> int:
        surveys = Surveys(uow_factory, survey_config(settings), UnitOfWorkAnswerWriter(uow_factory))
        return await surveys.close_expired(utc_now())

    closed = _run_in_uow(work)
    if as_json:
        sys.stdout.write(json.dumps({"closed": closed}) + "\n")
    else:
        Console().print(f"{closed} expired survey card(s) queued to close")


@app.command("recall")
def recall_messages(
    kind: Annotated[str, typer.Argument(help="Message kind: nps, onboarding, adoption, milestone, legacy, …")],
    tenant: Annotated[str | None, typer.Option(help="Only this tenant id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Take messages of one kind back: cancel those still queued, delete delivered cards from people's chats."""
    from bot.app import utc_now
    from bot.usecases.recall import recall

    tenant = check_id(tenant, "--tenant") if tenant else None

    async def work(uow_factory: Any) -> Any:
        return await recall(uow_factory, kind, utc_now(), tenant_id=tenant)

    report = _run_in_uow(work)
    if as_json:
        sys.stdout.write(json.dumps({"cancelled": report.cancelled, "recalls_queued": report.recalls_queued}) + "\n")
    else:
        Console().print(f"{report.cancelled} queued message(s) cancelled, {report.recalls_queued} card(s) to delete")


@app.command()
def deliver(
    workers: Annotated[int | None, typer.Option(help="Worker count (default NURTURE_DELIVERY_WORKERS).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Run delivery workers alone (no web app): send queued messages within Teams' limits until stopped."""
    import gc
    import signal

    from bot.app import app_installer, card_sender, delivery_crew, utc_now
    from bot.teams.adapter import build_adapter
    from storage.engine import create_engine, session_factory
    from storage.uow import UnitOfWork

    settings = _bot_settings()
    _migrated(settings)
    count = settings.delivery_workers if workers is None else workers

    async def run() -> int:
        # no ping before each transaction (three round trips on PostgreSQL): the workers retry what a lost connection
        # breaks, and the first error invalidates the pool, so a restart costs one retry, not one per connection
        engine = create_engine(settings.database_url, pool_pre_ping=False)
        sessions = session_factory(engine)
        _, authentication = build_adapter(settings)
        sender = card_sender(settings, authentication)
        installer = app_installer(settings)
        crew = delivery_crew(settings, sessions, sender, installer, utc_now, f"deliver-{os.getpid()}", max(1, count))
        gc.collect()
        gc.freeze()  # what start-up built lives as long as the process: full collections need not walk it again
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


async def _drain_with_progress(crew: list[Any], uow_factory: Any, *, quiet: bool) -> None:
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


@app.command()
def deliveries(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write one row per message to this file.")] = None,
) -> None:
    """Outbox status: counts by status and kind, status codes seen, throttling, oldest queued, recent errors."""
    from bot.app import utc_now
    from bot.usecases.delivery_report import delivery_report, write_csv

    async def work(uow_factory: Any) -> Any:
        async with uow_factory() as uow:
            return await delivery_report(uow, utc_now())

    report = _run_in_uow(work)
    if csv_file is not None:
        write_csv(report, csv_file)
    if as_json:
        sys.stdout.write(json.dumps(report.summary()) + "\n")
        return
    summary = report.summary()
    console_out = Console()

    def counts(found: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in found.items()) or "none"

    console_out.print(f"by status: {counts(summary['by_status'])}")
    kinds = "; ".join(f"{kind}: {counts(statuses)}" for kind, statuses in summary["by_kind"].items())
    console_out.print(f"by kind: {kinds or 'none'}")
    console_out.print(f"status codes seen (failures only): {counts(summary['status_codes'])}")
    oldest = summary["oldest_queued_seconds"]
    waiting = "nothing queued" if oldest is None else f"oldest queued {oldest} s ago"
    console_out.print(f"throttled (429): {summary['throttled']} · {waiting}")
    for error in summary["recent_errors"]:
        console_out.print(f"  #{error['id']} {error['status']} {error['error']}", markup=False, highlight=False)


@cards_app.command("export")
def cards_export(directory: Annotated[Path, typer.Argument(help="Folder to write the cards into.")]) -> None:
    """Write every card, in every locale, as JSON (paste one into the Adaptive Cards Designer)."""
    from cards.catalog import sample_cards

    directory.mkdir(parents=True, exist_ok=True)
    cards = sample_cards()
    for name, card in cards.items():
        (directory / f"{name}.json").write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    Console().print(f"{len(cards)} cards written to {directory}")


@app.command()
def forget(
    aad_object_id: Annotated[str, typer.Argument(help="The person's Microsoft Entra (AAD) object id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Delete everything stored about one person, in every tenant (exit 1 when nothing was stored about them)."""
    from bot.usecases.privacy import forget_user

    person = check_id(aad_object_id, "the object id")

    async def work(uow_factory: Any) -> dict[str, int]:
        async with uow_factory() as uow:
            counts = await forget_user(uow, person)
            await uow.commit()
        return counts

    counts = _run_in_uow(work)
    found = any(counts.values())
    if as_json:
        sys.stdout.write(json.dumps({"forgotten": person, "found": found, "deleted": counts}) + "\n")
    elif found:
        Console().print(f"forgot {person}: " + ", ".join(f"{n} {t}" for t, n in counts.items() if n))
    if not found:
        typer.echo(f"nurture: nothing is stored about {person}", err=True)
        raise typer.Exit(1)


@app.command()
def purge(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False) -> None:
    """Apply the retention settings now (serve also does this daily)."""
    from bot.app import retention, utc_now
    from bot.usecases.privacy import purge as purge_expired

    settings = _settings()

    async def work(uow_factory: Any) -> dict[str, int]:
        async with uow_factory() as uow:
            counts = await purge_expired(uow, retention(settings), utc_now())
            await uow.commit()
        return counts

    counts = _run_in_uow(work)
    if as_json:
        sys.stdout.write(json.dumps(counts) + "\n")
    else:
        Console().print(", ".join(f"{t.replace('_', ' ')}: {n}" for t, n in counts.items()))


def _run_in_uow(work: Any) -> Any:
    """Run `work(uow_factory)` against the configured (and migrated) database."""
    from storage.engine import create_engine, session_factory
    from storage.uow import UnitOfWork

    settings = _settings()
    _migrated(settings)

    async def run() -> Any:
        engine = create_engine(settings.database_url)
        try:
            sessions = session_factory(engine)
            return await work(lambda: UnitOfWork(sessions))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@app.command("package")
def package_app(
    out: Annotated[Path, typer.Option(help="Where to write the zip.")] = Path("build/nurture-teams-app.zip"),
) -> None:
    """Build the Teams app package from appPackage/, validate it offline against Microsoft's schema, write the zip."""
    from bot.packaging.manifest import PackageValues, build, default_teams_app_id, validate, write_zip

    settings = _settings()
    values = PackageValues(
        bot_id=settings.app_id,
        teams_app_id=settings.teams_app_id or default_teams_app_id(settings.app_id),
        bot_domain=settings.public_hostname,
        product_name=settings.product_name,
        developer_name=settings.developer_name,
        website_url=settings.website_url,
        privacy_url=settings.privacy_url,
        terms_url=settings.terms_url,
        app_version=settings.app_version,
    )
    package = build(values)
    problems = validate(package, settings.app_id)
    if problems:
        for problem in problems:
            typer.echo(f"nurture: manifest {problem}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    Console().print(f"Teams app package written to {write_zip(package, out)}")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app(prog_name="nurture")


from bot import cli_campaigns, cli_success  # noqa: E402, F401  (register the usage, campaign and CSM commands)
