"""Campaign commands: `targets`, `run-campaigns`, `campaigns report`, `tenant renewal`."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from bot.cli.common import (
    EXIT_CONFIG,
    JSON_OUTPUT,
    allowed_tenant,
    app,
    campaign_config,
    campaigns_app,
    check_id,
    load_settings,
    tenant_app,
    with_database,
)

if TYPE_CHECKING:
    from bot.cli.common import UowFactory
    from bot.usecases.campaign_report import CampaignUplift
    from bot.usecases.campaigns import Plan, RunReport


@app.command()
def targets(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant id.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also list matches held back by a gate, and why.")] = False,
    as_json: Annotated[bool, JSON_OUTPUT] = False,
) -> None:
    """Who would get which campaign message now, and why (a dry run: nothing is stored or sent)."""
    from bot.clock import utc_now
    from bot.engagement.targeting import Outcome
    from bot.tuning import collector_paused
    from bot.usecases.campaigns import Campaigns

    tenant = check_id(tenant, "--tenant") if tenant else None
    settings = load_settings()
    config = campaign_config(settings)

    async def work(uow_factory: UowFactory) -> Plan:
        return await Campaigns(uow_factory, config, bulk_work=collector_paused).plan(utc_now(), tenant)

    plan = with_database(work)
    rows: list[dict[str, Any]] = [
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
    renewals: list[dict[str, Any]] = [
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
    from bot.clock import utc_now
    from bot.tuning import collector_paused
    from bot.usecases.campaigns import Campaigns

    tenant = check_id(tenant, "--tenant") if tenant else None
    settings = load_settings()
    config = campaign_config(settings)

    async def work(uow_factory: UowFactory) -> RunReport:
        return await Campaigns(uow_factory, config, bulk_work=collector_paused).run(utc_now(), tenant)

    report = with_database(work)
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
    from bot.clock import utc_now
    from bot.usecases.campaign_report import campaign_report

    async def work(uow_factory: UowFactory) -> list[CampaignUplift]:
        return await campaign_report(uow_factory, utc_now(), window, min_group)

    report = with_database(work)
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
    from bot.clock import utc_now

    tenant = allowed_tenant(tenant_id)
    if clear == (renewal is not None):
        typer.echo("nurture: give a date (YYYY-MM-DD) or --clear", err=True)
        raise typer.Exit(EXIT_CONFIG)
    try:
        when = date.fromisoformat(renewal) if renewal else None
    except ValueError:
        typer.echo(f"nurture: {renewal!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(EXIT_CONFIG) from None

    async def work(uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.tenants.set_renewal(tenant, when, utc_now())
            await uow.commit()

    with_database(work)
    Console().print(f"tenant {tenant}: renewal {when.isoformat() if when else 'cleared'}")
