"""NPS commands: `nps`, `survey send`, `survey close-expired`, and `recall` of sent messages."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from bot.cli.common import (
    EXIT_CONFIG,
    app,
    check_id,
    fail,
    load_settings,
    survey_app,
    with_database,
)

if TYPE_CHECKING:
    from bot.cli.common import UowFactory
    from bot.usecases.recall import RecallReport
    from bot.usecases.reports import NpsReport


@app.command()
def nps(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant id.")] = None,
    by: Annotated[str | None, typer.Option(help="Group by week, month or quarter.")] = None,
    min_answers: Annotated[int | None, typer.Option(min=1, help="Show no score below this many answers.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """NPS with its 95 % interval, response rate and period-over-period change."""
    from bot.engagement.periods import Period
    from bot.usecases.reports import nps_report, report_json

    settings = load_settings()
    tenant = check_id(tenant, "--tenant") if tenant else None
    try:
        period = Period(by) if by else None
    except ValueError:
        typer.echo("nurture: --by must be week, month or quarter", err=True)
        raise typer.Exit(EXIT_CONFIG) from None

    async def work(uow_factory: UowFactory) -> NpsReport:
        return await nps_report(
            uow_factory, tenant_id=tenant, by=period, min_answers=min_answers or settings.nps_min_answers
        )

    report = with_database(work, settings)
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
    from bot.clock import utc_now
    from bot.policies import survey_config
    from bot.usecases.surveys import AskResult, Surveys
    from storage.answers import UnitOfWorkAnswerWriter
    from storage.models import User

    settings = load_settings()
    if not user and not tenant:
        typer.echo("nurture: name --user AAD_ID or --tenant TENANT_ID", err=True)
        raise typer.Exit(EXIT_CONFIG)
    people = [check_id(aad, "--user") for aad in user or []]
    tenant = check_id(tenant, "--tenant") if tenant else None

    async def work(uow_factory: UowFactory) -> list[AskResult]:
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

    results = with_database(work)
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
    from bot.clock import utc_now
    from bot.policies import survey_config
    from bot.usecases.surveys import Surveys
    from storage.answers import UnitOfWorkAnswerWriter

    settings = load_settings()

    async def work(uow_factory: UowFactory) -> int:
        surveys = Surveys(uow_factory, survey_config(settings), UnitOfWorkAnswerWriter(uow_factory))
        return await surveys.close_expired(utc_now())

    closed = with_database(work)
    if as_json:
        sys.stdout.write(json.dumps({"closed": closed}) + "\n")
    else:
        Console().print(f"{closed} expired survey card(s) queued to close")


@app.command("recall")
def recall_messages(
    kind: Annotated[str, typer.Argument(help="Message kind: nps, a campaign kind (onboarding, …), alert, digest.")],
    tenant: Annotated[str | None, typer.Option(help="Only this tenant id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Take messages of one kind back: cancel those still queued, delete delivered cards from people's chats."""
    from bot.clock import utc_now
    from bot.usecases.recall import MESSAGE_KINDS, recall

    tenant = check_id(tenant, "--tenant") if tenant else None
    if kind not in MESSAGE_KINDS:
        raise fail(f"no messages are of kind {kind!r}: one of {', '.join(MESSAGE_KINDS)}")

    async def work(uow_factory: UowFactory) -> RecallReport:
        return await recall(uow_factory, kind, utc_now(), tenant_id=tenant)

    report = with_database(work)
    if as_json:
        sys.stdout.write(json.dumps({"cancelled": report.cancelled, "recalls_queued": report.recalls_queued}) + "\n")
    else:
        Console().print(f"{report.cancelled} queued message(s) cancelled, {report.recalls_queued} card(s) to delete")
