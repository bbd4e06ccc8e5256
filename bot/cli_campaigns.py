"""CLI commands for usage and campaigns: ingest, usage verify, targets, run-campaigns, campaigns report, tenant
renewal.

Registered on the `nurture` app by bot.cli; kept apart so each file stays readable.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bot.cli import EXIT_CONFIG, _run_in_uow, _settings, app, check_id
from bot.config import ConfigError, Settings
from bot.json_body import JsonRefused, parse_json

campaigns_app = typer.Typer(no_args_is_help=True, help="Campaign results.")
app.add_typer(campaigns_app, name="campaigns")
tenant_app = typer.Typer(no_args_is_help=True, help="Tenant settings.")
app.add_typer(tenant_app, name="tenant")
usage_app = typer.Typer(no_args_is_help=True, help="Usage rollups.")
app.add_typer(usage_app, name="usage")

INGEST_BATCH = 5000
CSV_COLUMNS = ("tenant_id", "user_id", "name", "timestamp")
JSON_OUTPUT = typer.Option("--json", help="Print one JSON document.")


@dataclass(frozen=True)
class Unreadable:
    """A JSONL line that is not an event object's JSON; `reason` says why (the line is refused, the rest go on)."""

    reason: str


def allowed_tenant(tenant_id: str) -> str:
    """A tenant id from the command line for a command that stores something about the tenant: its stored form, if
    the tenant is on NURTURE_ALLOWED_TENANTS (exit 1 otherwise). Held to the same list as the server and `nurture
    ingest`: a typo would otherwise create a tenant that CSMs are told about, and nothing from it would be accepted."""
    tenant = check_id(tenant_id, "the tenant id")
    refusal = _settings().tenant_policy.refusal(tenant)
    if refusal:
        typer.echo(f"nurture: tenant {tenant}: {refusal} (NURTURE_ALLOWED_TENANTS): nothing was stored", err=True)
        raise typer.Exit(1)
    return tenant


def _campaign_config(settings: Settings) -> Any:
    from bot.app import campaign_config

    try:
        return campaign_config(settings)
    except ConfigError as exc:
        typer.echo(f"nurture: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


# -- nurture ingest ---------------------------------------------------------------------------------------------


def _read_events(path: Path) -> Iterator[tuple[int, Any]]:
    """(line or row number, raw event) from JSONL or CSV; a line that is not JSON this reads yields Unreadable."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            unknown = [c for c in header if c not in (*CSV_COLUMNS, "properties")]
            if unknown or not set(CSV_COLUMNS) <= set(header):
                raise ConfigError(
                    f"{path}: CSV header must be {','.join(CSV_COLUMNS)}[,properties] (found {','.join(header)})"
                )
            for row in reader:
                event: dict[str, Any] = {k: row[k] for k in CSV_COLUMNS}
                if row.get("properties"):
                    try:
                        event["properties"] = json.loads(row["properties"])
                    except ValueError:
                        event["properties"] = row["properties"]  # refused by validation, with its reason
                yield reader.line_num, event
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:  # as the API reads a body: nesting bounded, numbers finite
                yield number, parse_json(line.encode())
            except JsonRefused as refused:
                yield number, Unreadable(str(refused).removeprefix("body ").removeprefix("is "))


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="Usage events: JSONL (one event object per line) or .csv.")],
    as_json: Annotated[bool, JSON_OUTPUT] = False,
) -> None:
    """Import usage events with the same checks as POST /api/usage/events; exit 1 if any line was refused."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bot.app import utc_now
    from bot.engagement.usage import Rejection
    from bot.usecases.ingest import UsageIngest

    settings = _settings()
    if not file.is_file():
        typer.echo(f"nurture: no such file: {file}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    with file.open(encoding="utf-8", errors="replace") as handle:
        lines = sum(1 for _ in handle)

    async def work(uow_factory: Any) -> dict[str, Any]:
        usage = UsageIngest(uow_factory, settings.tenant_policy)
        totals: Counter[str] = Counter()
        rejections: list[Rejection] = []
        columns = (TextColumn("ingesting"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=Console(stderr=True), disable=as_json) as progress:
            task = progress.add_task("events", total=lines)
            batch: list[tuple[int, Any]] = []

            async def flush() -> None:
                readable = [(number, raw) for number, raw in batch if not isinstance(raw, Unreadable)]
                rejections.extend(Rejection(n, raw.reason) for n, raw in batch if isinstance(raw, Unreadable))
                report = await usage.ingest([raw for _, raw in readable], utc_now())
                totals.update(accepted=report.accepted, stored=report.stored, duplicates=report.duplicates)
                rejections.extend(Rejection(readable[r.index][0], r.reason) for r in report.rejections)
                progress.advance(task, len(batch))
                batch.clear()

            for number, raw in _read_events(file):
                batch.append((number, raw))
                if len(batch) >= INGEST_BATCH:
                    await flush()
            if batch:
                await flush()
        return {
            "file": str(file),
            **{k: totals[k] for k in ("accepted", "stored", "duplicates")},
            "rejected": len(rejections),
            "rejections": [
                {"line": r.index, "reason": r.reason} for r in sorted(rejections, key=lambda r: r.index)[:100]
            ],
        }

    try:
        result = _run_in_uow(work)
    except ConfigError as exc:
        typer.echo(f"nurture: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        out = Console()
        out.print(
            f"{result['accepted']} accepted ({result['stored']} new, {result['duplicates']} already known), "
            f"{result['rejected']} refused"
        )
        for rejection in result["rejections"][:20]:
            out.print(f"  line {rejection['line']}: {rejection['reason']}", markup=False, highlight=False)
    if result["rejected"]:
        raise typer.Exit(1)


@usage_app.command("verify")
def usage_verify(
    repair: Annotated[
        bool, typer.Option("--repair", help="Copy usage_activity's words into the drifted profiles.")
    ] = False,
    as_json: Annotated[bool, JSON_OUTPUT] = False,
) -> None:
    """Check that each person's profile holds their newest active-day words as usage_activity has them (what
    campaigns read); exit 1 if some do not, unless --repair copied them (ingestion waits meanwhile)."""

    async def work(uow_factory: Any) -> Any:
        async with uow_factory() as uow:
            if not repair:
                return await uow.usage.drifted_profiles()
            drifted = await uow.usage.repair_profiles()
            await uow.commit()
            return drifted

    drifted = _run_in_uow(work)
    result = {
        "drifted": len(drifted),
        "repaired": len(drifted) if repair else 0,
        "people": [{"tenant": d.tenant_id, "user": d.aad_object_id} for d in drifted[:100]],
    }
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        out = Console()
        if not drifted:
            out.print("every usage profile holds its person's newest active days")
        else:
            verb = "repaired" if repair else "differ from usage_activity (run again with --repair)"
            out.print(f"{len(drifted)} usage profile(s) {verb}", highlight=False)
            for d in drifted[:20]:
                out.print(f"  tenant {d.tenant_id} user {d.aad_object_id}", markup=False, highlight=False)
    if drifted and not repair:
        raise typer.Exit(1)


# -- nurture targets / run-campaigns ----------------------------------------------------------------------------


@app.command()
def targets(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant id.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also list matches held back by a gate, and why.")] = False,
    as_json: Annotated[bool, JSON_OUTPUT] = False,
) -> None:
    """Who would get which campaign message now, and why (a dry run: nothing is stored or sent)."""
    from bot.app import utc_now
    from bot.engagement.targeting import Outcome
    from bot.usecases.campaigns import Campaigns

    tenant = check_id(tenant, "--tenant") if tenant else None
    settings = _settings()
    config = _campaign_config(settings)

    async def work(uow_factory: Any) -> Any:
        return await Campaigns(uow_factory, config).plan(utc_now(), tenant)

    plan = _run_in_uow(work)
    rows = [
        {
            "tenant": t.tenant_id,
            "user": t.aad_object_id,
            "campaign": t.campaign_id,
            "kind": t.kind,
            "step": t.step,
            "outcome": t.outcome.value,
            "reason": t.reason,
            "blocked_by": t.blocked_by,
            "not_before": t.not_before.isoformat() if t.not_before else None,
        }
        for t in plan.targets
    ]
    renewals = [
        {
            "tenant": r.tenant_id,
            "campaign": r.campaign_id,
            "renewal_date": r.renewal_date.isoformat(),
            "days_left": r.days_left,
            "reminder": r.days_before,
            "reason": r.reason,
        }
        for r in plan.renewals
    ]
    counts = Counter((r["campaign"], r["outcome"]) for r in rows)
    counts.update((r["campaign"], "csm-reminder") for r in renewals)
    if as_json:
        summary = [{"campaign": c, "outcome": o, "people": n} for (c, o), n in sorted(counts.items())]
        sys.stdout.write(json.dumps({"targets": rows, "renewals": renewals, "summary": summary}) + "\n")
        return
    from rich.table import Table

    shown = [r for r in rows if show_all or r["outcome"] in (Outcome.SEND, Outcome.HOLDOUT)]
    table = Table("tenant", "user", "campaign", "step", "outcome", "why", title="Campaign targets (dry run)")
    for r in shown:
        why = r["reason"] + (f" — held back: {r['blocked_by']}" if r["blocked_by"] else "")
        table.add_row(r["tenant"][:8], r["user"][:8], r["campaign"], r["step"], r["outcome"], why)
    out = Console()
    out.print(table)
    for r in renewals:
        out.print(f"renewal reminder for CSMs: tenant {r['tenant']}: {r['reason']}", highlight=False)
    out.print(
        "by campaign: " + (", ".join(f"{c} {o} {n}" for (c, o), n in sorted(counts.items())) or "nobody matches now")
    )


@app.command("run-campaigns")
def run_campaigns(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant id.")] = None,
    as_json: Annotated[bool, JSON_OUTPUT] = False,
) -> None:
    """Evaluate campaigns once and queue the messages (delivery workers send them; serve does this hourly)."""
    from bot.app import utc_now
    from bot.usecases.campaigns import Campaigns

    tenant = check_id(tenant, "--tenant") if tenant else None
    settings = _settings()
    config = _campaign_config(settings)

    async def work(uow_factory: Any) -> Any:
        return await Campaigns(uow_factory, config).run(utc_now(), tenant)

    report = _run_in_uow(work)
    result = {
        "queued": report.queued,
        "held_out": report.held_out,
        "renewal_alerts": report.renewal_alerts,
        "already_done": report.already_done,
        "by_campaign": report.by_campaign,
    }
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        Console().print(
            f"queued {report.queued} message(s), held out {report.held_out}, "
            f"{report.renewal_alerts} renewal alert(s) for CSMs"
        )


@campaigns_app.command("report")
def campaigns_report(
    window: Annotated[int, typer.Option(help="Days after a message in which coming back counts.")] = 14,
    min_group: Annotated[int, typer.Option(help="No verdict below this many people per group.")] = 10,
    as_json: Annotated[bool, JSON_OUTPUT] = False,
) -> None:
    """Re-engagement of messaged versus held-out people per campaign, with a 95 % interval on the uplift."""
    from bot.app import utc_now
    from bot.usecases.campaign_report import campaign_report

    async def work(uow_factory: Any) -> Any:
        return await campaign_report(uow_factory, utc_now(), window, min_group)

    report = _run_in_uow(work)
    rows = [row.as_json() for row in report]
    if as_json:
        sys.stdout.write(json.dumps({"window_days": window, "campaigns": rows}) + "\n")
        return
    from rich.table import Table

    table = Table("campaign", "messaged", "came back", "held out", "came back", "uplift (95 % interval)", "verdict")
    for r in rows:
        interval = r["interval_95"]
        shown = f"{r['uplift_points']:+.1f} pts ({interval[0]:+.1f} … {interval[1]:+.1f})" if interval else "—"
        table.add_row(
            r["campaign"],
            str(r["treated"]["touched"]),
            _rate(r["treated_rate"]),
            str(r["holdout"]["touched"]),
            _rate(r["holdout_rate"]),
            shown,
            r["verdict"],
        )
    Console().print(table)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


# -- nurture tenant renewal ---------------------------------------------------------------------------------------


@tenant_app.command("renewal")
def tenant_renewal(
    tenant_id: Annotated[str, typer.Argument(help="The tenant id.")],
    renewal: Annotated[str | None, typer.Argument(help="Renewal date, YYYY-MM-DD.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the renewal date.")] = False,
) -> None:
    """Set a tenant's renewal date (CSMs get reminders 90/60/30 days before), or --clear it; exit 1 for a tenant
    outside NURTURE_ALLOWED_TENANTS."""
    from bot.app import utc_now

    tenant = allowed_tenant(tenant_id)
    if clear == (renewal is not None):
        typer.echo("nurture: give a date (YYYY-MM-DD) or --clear", err=True)
        raise typer.Exit(EXIT_CONFIG)
    try:
        when = date.fromisoformat(renewal) if renewal else None
    except ValueError:
        typer.echo(f"nurture: {renewal!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(EXIT_CONFIG) from None

    async def work(uow_factory: Any) -> None:
        async with uow_factory() as uow:
            await uow.tenants.set_renewal(tenant, when, utc_now())
            await uow.commit()

    _run_in_uow(work)
    Console().print(f"tenant {tenant}: renewal {when.isoformat() if when else 'cleared'}")
