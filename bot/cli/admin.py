"""Administration commands: `demo` data, `deliveries`, `cards export`, `forget`, `purge`, `package`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from bot.cli.common import (
    EXIT_CONFIG,
    app,
    cards_app,
    check_id,
    load_settings,
    with_database,
)

if TYPE_CHECKING:
    from bot.cli.common import UowFactory
    from bot.usecases.delivery_report import DeliveryReport


@app.command()
def demo(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False) -> None:
    """Load synthetic tenants and users into the configured database (idempotent)."""
    from bot.demo import load_demo

    async def work(uow_factory: UowFactory) -> dict[str, int]:
        async with uow_factory() as uow:
            summary = await load_demo(uow, datetime.now(UTC))
        return {"tenants": summary.tenants, "users": summary.users, "events": summary.events}

    result = with_database(work)
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        Console().print(
            f"demo data loaded: {result['tenants']} tenants, {result['users']} users, {result['events']} usage events"
        )


@app.command()
def deliveries(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write one row per message to this file.")] = None,
) -> None:
    """Outbox status: counts by status and kind, status codes seen, throttling, oldest queued, recent errors."""
    from bot.clock import utc_now
    from bot.usecases.delivery_report import delivery_report, write_csv

    async def work(uow_factory: UowFactory) -> DeliveryReport:
        async with uow_factory() as uow:
            return await delivery_report(uow, utc_now())

    report = with_database(work)
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

    async def work(uow_factory: UowFactory) -> dict[str, int]:
        async with uow_factory() as uow:
            counts = await forget_user(uow, person)
            await uow.commit()
        return counts

    counts = with_database(work)
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
    from bot.clock import utc_now
    from bot.policies import retention
    from bot.usecases.privacy import purge as purge_expired

    settings = load_settings()

    async def work(uow_factory: UowFactory) -> dict[str, int]:
        async with uow_factory() as uow:
            counts = await purge_expired(uow, retention(settings), utc_now())
            await uow.commit()
        return counts

    counts = with_database(work)
    if as_json:
        sys.stdout.write(json.dumps(counts) + "\n")
    else:
        Console().print(", ".join(f"{t.replace('_', ' ')}: {n}" for t, n in counts.items()))


@app.command("package")
def package_app(
    out: Annotated[Path, typer.Option(help="Where to write the zip.")] = Path("build/nurture-teams-app.zip"),
) -> None:
    """Build the Teams app package from appPackage/, validate it offline against Microsoft's schema, write the zip."""
    from bot.packaging.manifest import PackageValues, build, default_teams_app_id, validate, write_zip

    settings = load_settings()
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
