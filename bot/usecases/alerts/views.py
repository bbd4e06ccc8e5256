"""The CSM commands' cards: accounts at risk, renewals coming, one account's health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.engagement.health import assess
from bot.usecases.alerts.accounts import Accounts, Visibility, account_name, worded
from cards.alerts import (
    AccountLine,
    AccountView,
    ComponentLine,
    build_account_card,
    build_account_list_card,
)
from cards.i18n import Strings


@dataclass
class CsmViews:
    accounts: Accounts

    async def visibility(self) -> Visibility:
        return await self.accounts.visibility()

    async def at_risk_card(self, viewer: str, locale: str | None, now: datetime) -> dict[str, Any]:
        visibility = await self.accounts.visibility()
        seen = [h for h in await self.accounts.health(now) if visibility.can_see(viewer, h.tenant_id)]
        t = Strings(locale)
        lines = [
            AccountLine(
                h.name or h.tenant_id,
                t("list.at_risk_line", score=f"{h.score:.0f}", arrow=h.arrow, reasons=worded(t, h.reasons[:2])),
            )
            for h in sorted(seen, key=lambda h: h.score)
            if h.at_risk
        ]
        return build_account_list_card(locale, "list.at_risk", lines, "list.at_risk_none")

    async def renewals_card(self, viewer: str, locale: str | None, now: datetime) -> dict[str, Any]:
        visibility = await self.accounts.visibility()
        async with self.accounts.uow_factory() as uow:
            tenants = await uow.alerts.tenants()
        t = Strings(locale)
        lines = []
        for tenant in sorted(tenants, key=lambda t: t.renewal_date or date.max):
            if tenant.renewal_date is None or not visibility.can_see(viewer, tenant.tenant_id):
                continue
            left = (tenant.renewal_date - now.date()).days
            if 0 <= left <= 90:
                when = {"date": tenant.renewal_date.isoformat(), "days": left}
                if tenant.health_score is None:
                    detail = t("list.renewal_line", **when)
                else:
                    detail = t("list.renewal_health", **when, score=f"{tenant.health_score:.0f}")
                lines.append(AccountLine(account_name(tenant, tenant.tenant_id), detail))
        return build_account_list_card(locale, "list.renewals", lines, "list.renewals_none")

    async def account_card(self, viewer: str, query: str, locale: str | None, now: datetime) -> dict[str, Any] | None:
        """The health card of the tenant named (id or display name); None when unknown or not the viewer's."""
        visibility = await self.accounts.visibility()
        async with self.accounts.uow_factory() as uow:
            tenants = await uow.alerts.tenants()
            match = next(
                (
                    t
                    for t in tenants
                    if query.lower() in (t.tenant_id.lower(), (t.display_name or "").lower())
                    and visibility.can_see(viewer, t.tenant_id)
                ),
                None,
            )
            if match is None:
                return None
            installed = await uow.alerts.installed_counts()
            health = assess(await self.accounts.signals(uow, match, now, installed), self.accounts.config.health, now)
            days = await uow.usage.tenant_days(match.tenant_id, now.date() - timedelta(days=29))
        series = [(str(d), days[d][0]) for d in sorted(days)]
        interval = health.nps.interval if health.nps.enough else None
        view = AccountView(
            locale=locale,
            account=account_name(match, match.tenant_id),
            score=health.score,
            arrow=health.arrow,
            at_risk=health.at_risk,
            components=[ComponentLine(c.name, c.contribution, c.reason) for c in health.components],
            left_out=list(health.left_out),
            active_users=series,
            nps=health.nps.raw_score if interval else None,
            nps_interval=(interval.low, interval.high) if interval else None,
            nps_answers=health.nps.answers,
            renewal=match.renewal_date.isoformat() if match.renewal_date else None,
        )
        return build_account_card(view)
