"""What every part of customer success reads about accounts: who may see them, their health, the alert card.

The other modules of this package (run, actions, views, digests) each take one `Accounts`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.engagement.campaigns import AlertSettings
from bot.engagement.health import Answer, Health, HealthPolicy, TenantSignals, assess
from bot.engagement.phrases import Phrase, stored_phrases
from bot.usecases.ports import Account, AlertRecord, AlertsUnitOfWork
from cards.alerts import (
    AlertCardView,
    AlertNote,
    build_alert_card,
)
from cards.i18n import Strings

HISTORY_DAYS = 60


@dataclass(frozen=True)
class AlertConfig:
    health: HealthPolicy
    settings: AlertSettings
    global_csms: frozenset[str]  # NURTURE_CSM_IDS: see every tenant
    value_event: str | None


@dataclass(frozen=True)
class Visibility:
    """Who may see which tenant: global CSMs see all; assigned CSMs see their tenants."""

    global_csms: frozenset[str]
    assigned: dict[str, list[str]]  # tenant → CSMs in escalation order

    def is_csm(self, aad: str | None) -> bool:
        aad = (aad or "").lower()
        return aad in self.global_csms or any(aad in csms for csms in self.assigned.values())

    def can_see(self, aad: str | None, tenant_id: str) -> bool:
        aad = (aad or "").lower()
        return aad in self.global_csms or aad in self.assigned.get(tenant_id, [])

    def csms_of(self, tenant_id: str) -> list[str]:
        """Everyone who may see the tenant: its assigned CSMs first, then the global ones."""
        assigned = self.assigned.get(tenant_id, [])
        return assigned + sorted(c for c in self.global_csms if c not in assigned)

    def levels(self, tenant_id: str, channel: str | None) -> list[list[str]]:
        """Who gets the alert at each escalation level: assigned CSMs one by one (else every global CSM), then the
        escalation channel ("channel:<id>")."""
        assigned = self.assigned.get(tenant_id, [])
        chain = [[c] for c in assigned] if assigned else ([sorted(self.global_csms)] if self.global_csms else [])
        if channel:
            chain.append([f"channel:{channel}"])
        return chain

    def all_csms(self) -> list[str]:
        return sorted(self.global_csms | {c for csms in self.assigned.values() for c in csms})


@dataclass(frozen=True)
class CsmChat:
    tenant_id: str
    user_id: int
    conversation_id: str
    locale: str | None
    time_zone: str | None


@dataclass
class Accounts:
    uow_factory: Callable[[], AlertsUnitOfWork]
    config: AlertConfig

    async def visibility(self) -> Visibility:
        async with self.uow_factory() as uow:
            return await self.visibility_in(uow)

    async def visibility_in(self, uow: AlertsUnitOfWork) -> Visibility:
        assigned = {t: [c.lower() for c in csms] for t, csms in (await uow.alerts.assignments()).items()}
        return Visibility(self.config.global_csms, assigned)

    async def health(self, now: datetime, tenant_ids: Sequence[str] | None = None) -> list[Health]:
        async with self.uow_factory() as uow:
            tenants = [t for t in await uow.alerts.tenants() if tenant_ids is None or t.tenant_id in tenant_ids]
            installed = await uow.alerts.installed_counts()
            return [assess(await self.signals(uow, t, now, installed), self.config.health, now) for t in tenants]

    async def signals(
        self, uow: AlertsUnitOfWork, tenant: Account, now: datetime, installed_counts: dict[str, int]
    ) -> TenantSignals:
        active = await uow.usage.active_days(tenant.tenant_id, (now - timedelta(days=HISTORY_DAYS)).date())
        installed = installed_counts.get(tenant.tenant_id, 0)
        answers = [Answer(a.score, a.answered_at) for a in await uow.surveys.scored_answers(tenant.tenant_id)]
        value = self.config.value_event
        reached = await uow.usage.features(tenant.tenant_id, [value]) if value else {}
        return TenantSignals(
            tenant_id=tenant.tenant_id,
            active_days={p: frozenset(days) for p, days in active.items()},
            installed=installed,
            answers=answers,
            milestone_reached=frozenset(reached),
            renewal_date=tenant.renewal_date,
            name=tenant.display_name,
        )

    async def alert_card(
        self,
        uow: AlertsUnitOfWork,
        alert: AlertRecord,
        viewer: str | None,
        locale: str | None,
        visibility: Visibility,
        *,
        escalated: bool = False,
        error: str | None = None,
        live: bool = True,
    ) -> dict[str, Any]:
        tenant = await uow.tenants.get(alert.tenant_id)
        detractor = await uow.alerts.detractor_comment(alert.survey_instance_id) if alert.survey_instance_id else None
        health_reasons = stored_phrases(alert.reasons)
        history = [
            AlertNote(f"{entry.at:%Y-%m-%d %H:%M}", entry.actor, entry.action, entry.note)
            for entry in await uow.alerts.history(alert.id)
            if entry.action in ("claimed", "snoozed", "note", "resolved", "escalated", "reopened")
        ]
        view = AlertCardView(
            alert_id=alert.id,
            kind=alert.kind,
            account=account_name(tenant, alert.tenant_id),
            locale=locale,
            viewer=viewer,
            status=alert.status,
            reasons=health_reasons,
            score=alert.score,
            arrow="",
            detractor_score=detractor[0] if detractor else None,
            comment=detractor[1] if detractor and live else None,
            comment_hidden=bool(detractor and detractor[1] and not live),
            claimed_by=alert.claimed_by,
            snoozed_until=f"{alert.snoozed_until:%Y-%m-%d}" if alert.snoozed_until else None,
            resolved_by=alert.resolved_by,
            history=history,
            refresh_users=visibility.csms_of(alert.tenant_id),
            escalated=escalated or alert.escalation_level > 0,
            error=error,
        )
        return build_alert_card(view)

    async def chat_of(self, uow: AlertsUnitOfWork, aad: str) -> CsmChat | None:
        """The CSM's personal chat with the bot, in any tenant."""
        for user in await uow.users.find_by_aad(aad):
            chat = await uow.conversations.personal_for(user.id)
            if chat is not None and user.uninstalled_at is None:
                return CsmChat(user.tenant_id, user.id, chat.conversation_id, user.locale, user.time_zone)
        return None


def worded(t: Strings, reasons: Iterable[Phrase | str]) -> str:
    return "; ".join(t.phrase(reason) for reason in reasons)


def account_name(tenant: Account | None, tenant_id: str) -> str:
    return tenant.display_name if tenant is not None and tenant.display_name else tenant_id
