"""Install lifecycle and chat commands: what happens in SQL and what the bot answers.

Free of botbuilder: the Teams layer turns an activity into an `Inbound` and sends back the returned card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.engagement.budget import AttentionBudget
from bot.engagement.commands import Command, parse
from bot.engagement.periods import Period
from bot.engagement.usage import BotSignal, bot_signal
from bot.usecases.alerts.accounts import Visibility
from bot.usecases.alerts.views import CsmViews
from bot.usecases.ports import LifecycleUnitOfWork
from bot.usecases.privacy import forget_user
from bot.usecases.reports import nps_report
from cards.notice import NoticeKind, NoticeView, build_notice_card
from cards.nps import ErrorCardView, build_error_card
from cards.nps_report import NpsReportView, ReportComment, TrendPoint, build_nps_report_card
from cards.welcome import WelcomeView, build_welcome_card
from storage.people import ConversationTarget, UserProfile


class Scope(StrEnum):
    PERSONAL = "personal"
    TEAM = "team"
    GROUP_CHAT = "groupChat"

    @classmethod
    def from_conversation_type(cls, conversation_type: str | None) -> Scope:
        return {"channel": cls.TEAM, "groupChat": cls.GROUP_CHAT}.get(conversation_type or "", cls.PERSONAL)


@dataclass(frozen=True)
class Inbound:
    """The facts of one authenticated activity that the use cases need. No display names."""

    activity_type: str
    activity_id: str
    conversation_id: str
    scope: Scope
    channel_id: str
    service_url: str
    bot_id: str
    tenant_id: str | None
    aad_object_id: str | None
    locale: str | None = None
    time_zone: str | None = None
    team_id: str | None = None
    text: str | None = None
    installation_action: str | None = None  # installationUpdate: "add" / "remove" (and "-upgrade" variants)
    bot_added: bool = False
    bot_removed: bool = False


_CSM_COMMANDS = frozenset({Command.NPS, Command.AT_RISK, Command.ACCOUNT, Command.RENEWALS})


@dataclass(frozen=True)
class Reply:
    card: dict[str, Any]
    summary: str  # the notification / fallback text


@dataclass
class Lifecycle:
    """Use cases for installs, uninstalls and commands; one unit of work each."""

    uow_factory: Callable[[], LifecycleUnitOfWork]
    product_name: str
    budget: AttentionBudget = field(default_factory=AttentionBudget)
    csm_ids: frozenset[str] = frozenset()
    min_answers: int = 10
    alerts: CsmViews | None = None  # CSM commands (at risk, account, renewals); per-tenant CSM assignment

    # -- idempotency -----------------------------------------------------------------------------

    async def claim(self, inbound: Inbound, now: datetime) -> bool:
        """Record the activity; False if it was seen before (Teams retries unanswered activities)."""
        async with self.uow_factory() as uow:
            fresh = await uow.activities.record(
                conversation_id=inbound.conversation_id,
                activity_id=inbound.activity_id,
                activity_type=inbound.activity_type,
                tenant_id=inbound.tenant_id,
                aad_object_id=inbound.aad_object_id,
                now=now,
            )
            await uow.commit()
        return fresh

    async def release(self, inbound: Inbound) -> None:
        async with self.uow_factory() as uow:
            await uow.activities.forget(inbound.conversation_id, inbound.activity_id)
            await uow.commit()

    # -- events ----------------------------------------------------------------------------------

    async def installation_update(self, inbound: Inbound, now: datetime) -> Reply | None:
        action = (inbound.installation_action or "").split("-")[0]
        async with self.uow_factory() as uow:
            user_id = await self._remember(uow, inbound, now)
            if action == "remove":
                await uow.conversations.mark_removed(inbound.conversation_id, now)
                if inbound.scope is Scope.PERSONAL and user_id is not None:
                    await uow.users.mark_uninstalled(user_id, now)
            elif action == "add" and inbound.scope is Scope.PERSONAL and user_id is not None:
                await uow.users.mark_installed(user_id, now)
                await self._signal(uow, inbound, BotSignal.INSTALLED, now)
            await uow.commit()
        if action == "add" and inbound.scope is Scope.PERSONAL:
            return self._welcome(inbound.locale)
        return None

    async def conversation_update(self, inbound: Inbound, now: datetime) -> None:
        async with self.uow_factory() as uow:
            await self._remember(uow, inbound, now)
            if inbound.bot_removed:
                await uow.conversations.mark_removed(inbound.conversation_id, now)
            await uow.commit()

    async def message(self, inbound: Inbound, now: datetime) -> Reply:
        parsed = parse(inbound.text)
        command = parsed.command
        async with self.uow_factory() as uow:
            if command is Command.DELETE_MY_DATA and inbound.aad_object_id:
                await forget_user(uow, inbound.aad_object_id)  # nothing to remember first: it would be deleted
            else:
                user_id = await self._remember(uow, inbound, now)
                if command in (Command.STOP, Command.START) and user_id is not None:
                    await uow.users.set_opted_out(user_id, command is Command.STOP, now)
                if command not in _CSM_COMMANDS:  # a CSM looking at accounts is not the customer using the app
                    await self._signal(uow, inbound, BotSignal.MESSAGE, now)
            await uow.commit()
        if command is Command.HELP:
            is_csm = (await self._visibility()).is_csm(inbound.aad_object_id)
            return self._welcome(inbound.locale, for_csm=is_csm)
        if command is Command.NPS:
            return await self._nps_report(inbound, parsed.argument)
        if command in (Command.AT_RISK, Command.ACCOUNT, Command.RENEWALS):
            return await self._csm_command(inbound, command, parsed.argument, now)
        notice = {
            Command.STOP: NoticeKind.OPTED_OUT,
            Command.START: NoticeKind.OPTED_IN,
            Command.DELETE_MY_DATA: NoticeKind.DATA_DELETED,
        }.get(command, NoticeKind.NOT_UNDERSTOOD)
        return self._notice(notice, inbound.locale)

    # -- helpers ---------------------------------------------------------------------------------

    async def _remember(self, uow: LifecycleUnitOfWork, inbound: Inbound, now: datetime) -> int | None:
        """Store the tenant, the user and how to reach this conversation; returns the user's row id."""
        if not inbound.tenant_id:
            return None  # dev-mode clients without a tenant: nothing to key the rows on
        await uow.tenants.touch(inbound.tenant_id, now)
        user_id = None
        if inbound.aad_object_id:
            profile = UserProfile(inbound.tenant_id, inbound.aad_object_id, inbound.locale, inbound.time_zone)
            user_id = await uow.users.upsert(profile, now)
        if not inbound.bot_removed and inbound.installation_action != "remove":
            target = ConversationTarget(
                conversation_id=inbound.conversation_id,
                tenant_id=inbound.tenant_id,
                scope=inbound.scope.value,
                channel_id=inbound.channel_id,
                service_url=inbound.service_url,
                bot_id=inbound.bot_id,
                team_id=inbound.team_id,
                user_id=user_id if inbound.scope is Scope.PERSONAL else None,
            )
            await uow.conversations.upsert(target, now)
        return user_id

    async def _signal(self, uow: LifecycleUnitOfWork, inbound: Inbound, name: str, now: datetime) -> None:
        """The bot's own activity counts as usage, like the vendor's events."""
        if inbound.tenant_id and inbound.aad_object_id:
            await uow.usage.record([bot_signal(inbound.tenant_id, inbound.aad_object_id, name, now)], now)

    def _welcome(self, locale: str | None, *, for_csm: bool = False) -> Reply:
        view = WelcomeView(
            product_name=self.product_name,
            locale=locale,
            max_per_short_window=self.budget.max_per_short_window,
            short_window_days=self.budget.short_window_days,
            max_per_long_window=self.budget.max_per_long_window,
            long_window_days=self.budget.long_window_days,
            for_csm=for_csm,
        )
        card = build_welcome_card(view)
        return Reply(card, str(card.get("fallbackText", "")))

    async def _visibility(self) -> Visibility:
        if self.alerts is not None:
            return await self.alerts.visibility()
        return Visibility(self.csm_ids, {})

    async def _csm_command(self, inbound: Inbound, command: Command, argument: str | None, now: datetime) -> Reply:
        viewer = (inbound.aad_object_id or "").lower()
        if self.alerts is None or not (await self._visibility()).is_csm(viewer):
            return self._notice(NoticeKind.NOT_CSM, inbound.locale)
        if command is Command.AT_RISK:
            card = await self.alerts.at_risk_card(viewer, inbound.locale, now)
        elif command is Command.RENEWALS:
            card = await self.alerts.renewals_card(viewer, inbound.locale, now)
        else:
            found = await self.alerts.account_card(viewer, argument or "", inbound.locale, now) if argument else None
            card = found or build_error_card(ErrorCardView(inbound.locale, "list.unknown_account"))
        return Reply(card, str(card.get("fallbackText", "")))

    async def _nps_report(self, inbound: Inbound, tenant: str | None) -> Reply:
        """CSMs only: NURTURE_CSM_IDS see every tenant, CSMs assigned in SQL only theirs (and must name one)."""
        viewer = (inbound.aad_object_id or "").lower()
        visibility = await self._visibility()
        if not visibility.is_csm(viewer):
            return self._notice(NoticeKind.NOT_CSM, inbound.locale)
        if viewer not in visibility.global_csms:
            mine = [t for t in visibility.assigned if visibility.can_see(viewer, t)]
            tenant = tenant or (mine[0] if len(mine) == 1 else None)
            if tenant is None or not visibility.can_see(viewer, tenant):
                card = build_error_card(ErrorCardView(inbound.locale, "list.unknown_account"))
                return Reply(card, str(card.get("fallbackText", "")))
        report = await nps_report(self.uow_factory, tenant_id=tenant, by=Period.MONTH, min_answers=self.min_answers)
        overall = report.overall
        interval = overall.interval
        view = NpsReportView(
            locale=inbound.locale,
            scope=tenant or "",
            answers=overall.answers,
            min_answers=overall.min_answers,
            score=overall.score,
            interval=(interval.low, interval.high) if interval else None,
            response_rate=overall.response_rate,
            promoters=overall.promoters,
            passives=overall.passives,
            detractors=overall.detractors,
            trend=[TrendPoint(row.period, row.summary.score) for row in report.periods],
            comments=[ReportComment(c.score, c.text, f"{c.answered_at:%Y-%m-%d}") for c in report.detractor_comments],
        )
        card = build_nps_report_card(view)
        return Reply(card, str(card.get("fallbackText", "")))

    def _notice(self, kind: NoticeKind, locale: str | None) -> Reply:
        card = build_notice_card(NoticeView(kind, locale, self.product_name))
        return Reply(card, str(card.get("fallbackText", "")))
