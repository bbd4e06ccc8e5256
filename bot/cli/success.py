"""Customer success commands: `health`, `alerts`, `run-alerts`, `csm assign|unassign`, `tenant name`."""

from __future__ import annotations

import functools
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from bot.cli.common import (
    EXIT_CONFIG,
    JSON_OUTPUT,
    allowed_tenant,
    app,
    campaign_config,
    check_id,
    csm_app,
    load_settings,
    tenant_app,
    with_database,
)

if TYPE_CHECKING:
    from bot.cli.common import UowFactory
    from bot.engagement.health import Health
    from bot.usecases.alerts.accounts import Accounts
    from bot.usecases.alerts.run import AlertRunReport
    from cards.i18n import Strings


@functools.cache
def english() -> Strings:
    """The command line speaks English; cards speak each reader's language."""
    from cards.i18n import Strings

    return Strings("en")


def _accounts(uow_factory: UowFactory) -> Accounts:
    from bot.policies import alert_config
    from bot.usecases.alerts.accounts import Accounts

    settings = load_settings()
    return Accounts(uow_factory, alert_config(settings, campaign_config(settings).campaigns))


@app.command()
def health(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant id.")] = None,
    as_json: Annotated[bool, JSON_OUTPUT] = False,
) -> None:
    """Account health per tenant: score 0–100, trend arrow, each component's contribution and reason."""
    from bot.clock import utc_now

    tenant = check_id(tenant, "--tenant") if tenant else None
    campaign_config(load_settings())  # a bad campaigns file stops here with its reason

    async def work(uow_factory: UowFactory) -> list[Health]:
        return await _accounts(uow_factory).health(utc_now(), [tenant] if tenant else None)

    results = with_database(work)
    rows: list[dict[str, Any]] = [
        {
            "tenant": h.tenant_id,
            "name": h.name,
            "score": h.score,
            "previous": h.previous,
            "arrow": h.arrow,
            "at_risk": h.at_risk,
            "components": [
                {"name": c.name, "value": c.value, "contribution": c.contribution, "reason": english().phrase(c.reason)}
                for c in h.components
            ],
            "left_out": [english().phrase(missing) for missing in h.left_out],
            "reasons": [english().phrase(reason) for reason in h.reasons],
        }
        for h in results
    ]
    if as_json:
        sys.stdout.write(json.dumps({"tenants": rows}, ensure_ascii=False) + "\n")
        return
    out = Console()
    for row in sorted(rows, key=lambda r: r["score"]):
        flag = " AT RISK" if row["at_risk"] else ""
        out.print(f"[bold]{row['name'] or row['tenant']}[/bold]  {row['score']:.0f} {row['arrow']}{flag}")
        for c in row["components"]:
            out.print(f"   {c['contribution']:5.1f}  {c['name']}: {c['reason']}", highlight=False)
        for missing in row["left_out"]:
            out.print(f"      –  not counted: {missing}", highlight=False)


@app.command()
def alerts(
    show_all: Annotated[bool, typer.Option("--all", help="Include resolved alerts.")] = False,
    as_json: Annotated[bool, JSON_OUTPUT] = False,
) -> None:
    """Churn-risk alerts: kind, account, state, who claimed or resolved them, escalation level."""
    from bot.engagement.phrases import stored_phrases

    async def work(uow_factory: UowFactory) -> list[dict[str, Any]]:
        async with uow_factory() as uow:
            found = await uow.alerts.all(open_only=not show_all)
            return [
                {
                    "id": a.id,
                    "tenant": a.tenant_id,
                    "kind": a.kind,
                    "status": a.status,
                    "score": a.score,
                    "reasons": [english().phrase(reason) for reason in stored_phrases(a.reasons)],
                    "claimed_by": a.claimed_by,
                    "resolved_by": a.resolved_by,
                    "escalation_level": a.escalation_level,
                    "escalate_at": a.escalate_at.isoformat() if a.escalate_at else None,
                    "created_at": a.created_at.isoformat(),
                    "log": [
                        {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "note": e.note}
                        for e in await uow.alerts.history(a.id)
                    ],
                }
                for a in found
            ]

    rows = with_database(work)
    if as_json:
        sys.stdout.write(json.dumps({"alerts": rows}, ensure_ascii=False) + "\n")
        return
    out = Console()
    if not rows:
        out.print("no open alerts")
    for r in rows:
        who = f" · claimed by {r['claimed_by']}" if r["claimed_by"] else ""
        out.print(
            f"#{r['id']} {r['kind']} {r['tenant']} {r['status']}{who} · {'; '.join(r['reasons'][:2])}", highlight=False
        )


@app.command("run-alerts")
def run_alerts(as_json: Annotated[bool, JSON_OUTPUT] = False) -> None:
    """Score every tenant, raise and escalate alerts, send digests — once (serve does this with each campaign run)."""
    from bot.clock import utc_now

    campaign_config(load_settings())

    async def work(uow_factory: UowFactory) -> AlertRunReport:
        from bot.usecases.alerts.digests import Digests
        from bot.usecases.alerts.run import AlertRun

        accounts = _accounts(uow_factory)
        return await AlertRun(accounts, Digests(accounts)).run(utc_now())

    report = with_database(work)
    result = {
        "tenants": report.tenants,
        "raised": report.raised,
        "escalated": report.escalated,
        "cards": report.cards,
        "digests": report.digests,
        "undeliverable": report.undeliverable,
    }
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        Console().print(
            f"{report.tenants} tenants scored; raised {_counted(report.raised)}; escalated {report.escalated}; "
            f"{report.cards} alert card(s) and {report.digests} digest(s) queued"
        )
        for problem in report.undeliverable:
            Console(stderr=True).print(f"  not delivered: {problem}", highlight=False)


@csm_app.command("assign")
def csm_assign(
    tenant_id: Annotated[str, typer.Argument(help="The tenant id.")],
    aad_object_id: Annotated[str, typer.Argument(help="The CSM's Entra object id.")],
    position: Annotated[int, typer.Option(help="Escalation order: 0 gets alerts first.")] = 0,
) -> None:
    """Assign a CSM to a tenant: they get its alerts and may see it (and only the tenants they are assigned)."""
    from bot.clock import utc_now

    tenant, csm = allowed_tenant(tenant_id), check_id(aad_object_id, "the CSM's object id")

    async def work(uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.tenants.touch(tenant, utc_now())
            await uow.alerts.assign(tenant, csm, position)
            await uow.commit()

    with_database(work)
    Console().print(f"CSM {csm} assigned to {tenant} (position {position})")


@csm_app.command("unassign")
def csm_unassign(
    tenant_id: Annotated[str, typer.Argument(help="The tenant id.")],
    aad_object_id: Annotated[str, typer.Argument(help="The CSM's Entra object id.")],
) -> None:
    """Remove a CSM from a tenant."""
    tenant, csm = check_id(tenant_id, "the tenant id"), check_id(aad_object_id, "the CSM's object id")

    async def work(uow_factory: UowFactory) -> int:
        async with uow_factory() as uow:
            removed = await uow.alerts.unassign(tenant, csm)
            await uow.commit()
            return int(removed)

    if not with_database(work):
        typer.echo(f"nurture: {csm} was not assigned to {tenant}", err=True)
        raise typer.Exit(1)
    Console().print(f"CSM {csm} no longer assigned to {tenant}")


@tenant_app.command("name")
def tenant_name(
    tenant_id: Annotated[str, typer.Argument(help="The tenant id.")],
    name: Annotated[str, typer.Argument(help="The organisation's name, as CSMs know it.")],
) -> None:
    """Name a tenant for CSMs' cards and commands (`account <name>` then works too)."""
    from bot.clock import utc_now

    tenant = allowed_tenant(tenant_id)
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > 200:
        typer.echo("nurture: the name must be 1 to 200 characters", err=True)
        raise typer.Exit(EXIT_CONFIG)

    async def work(uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.alerts.set_name(tenant, cleaned, utc_now())
            await uow.commit()

    with_database(work)
    Console().print(f"tenant {tenant}: {cleaned}")


def _counted(raised: dict[str, int]) -> str:
    """ "2 renewal, 1 at_risk" (the most first), or "nothing"."""
    found = sorted(raised.items(), key=lambda kind_count: (-kind_count[1], kind_count[0]))
    return ", ".join(f"{count} {kind}" for kind, count in found) or "nothing"
