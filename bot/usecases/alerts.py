"""Customer success: account health, churn-risk alerts for CSMs (raise, deliver, act, escalate), digests, commands.

One run (`run`, from the scheduler or `nurture run-alerts`): wake snoozed alerts, score every tenant and raise an
at-risk alert when one crosses below the threshold, turn pending causes (detractor answers, renewals) into alerts,
send each new alert to the tenant's first CSM, escalate what nobody claimed in time, and send digests to CSMs whose
local morning has come. Every card goes through the outbox. Free of botbuilder.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import Field

from bot.engagement.asking import local_time
from bot.engagement.business_days import add_business_days
from bot.engagement.campaigns import AlertSettings
from bot.engagement.health import Answer, Health, HealthPolicy, TenantSignals, assess
from bot.engagement.nps import compare, summarize
from bot.engagement.phrases import Phrase, stored_phrases
from bot.usecases.card_actions import ActionData, Actor, Card, CardActions, Refused
from cards.alerts import (
    AccountLine,
    AccountView,
    AlertCardView,
    AlertNote,
    ComponentLine,
    DigestView,
    build_account_card,
    build_account_list_card,
    build_alert_card,
    build_digest_card,
)
from cards.i18n import Strings
from cards.verbs import Verb
from storage.alerts import NOTE_MAX_LENGTH, NewAlert
from storage.models import ROW_ID_MAX, Alert, Tenant
from storage.outbox import NewMessage
from storage.uow import UnitOfWork

SNOOZE = timedelta(days=7)
# a card action's change to an alert, by the CSM named: a card-string key when the input is refused, else None
_Change = Callable[[UnitOfWork, Alert, str], Awaitable[str | None]]
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
class AlertRunReport:
    tenants: int = 0
    raised: dict[str, int] = field(default_factory=dict)
    escalated: int = 0
    cards: int = 0
    digests: int = 0
    undeliverable: list[str] = field(default_factory=list)  # CSMs without a chat with the bot


class AlertData(ActionData):
    alert: int = Field(ge=1, le=ROW_ID_MAX)  # an id no row can have is refused here, not by the database
    note: str | None = None


@dataclass
class Alerts:
    uow_factory: Callable[[], UnitOfWork]
    config: AlertConfig

    # -- health ------------------------------------------------------------------------------------------------

    async def visibility(self) -> Visibility:
        async with self.uow_factory() as uow:
            return await self._visibility(uow)

    async def _visibility(self, uow: UnitOfWork) -> Visibility:
        assigned = {t: [c.lower() for c in csms] for t, csms in (await uow.alerts.assignments()).items()}
        return Visibility(self.config.global_csms, assigned)

    async def health(self, now: datetime, tenant_ids: Sequence[str] | None = None) -> list[Health]:
        async with self.uow_factory() as uow:
            tenants = [t for t in await uow.alerts.tenants() if tenant_ids is None or t.tenant_id in tenant_ids]
            installed = await uow.alerts.installed_counts()
            return [assess(await self._signals(uow, t, now, installed), self.config.health, now) for t in tenants]

    async def _signals(
        self, uow: UnitOfWork, tenant: Tenant, now: datetime, installed_counts: dict[str, int]
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

    # -- the engine --------------------------------------------------------------------------------------------

    async def run(self, now: datetime) -> AlertRunReport:
        report = AlertRunReport()
        async with self.uow_factory() as uow:
            visibility = await self._visibility(uow)
            woken = await uow.alerts.wake_snoozed(now)
            for alert_id in woken:
                await uow.alerts.log(alert_id, now, None, "reopened")
            installed = await uow.alerts.installed_counts()
            healths: dict[str, Health] = {}
            for tenant in await uow.alerts.tenants():
                report.tenants += 1
                health = assess(await self._signals(uow, tenant, now, installed), self.config.health, now)
                healths[tenant.tenant_id] = health
                crossed = health.at_risk and tenant.at_risk is not True
                await uow.alerts.set_health(tenant.tenant_id, health.score, health.at_risk, now)
                if crossed:
                    reasons = health.reasons or [c.reason for c in health.components]
                    alert = NewAlert(
                        tenant.tenant_id,
                        "at_risk",
                        f"at_risk:{tenant.tenant_id}:{now.date().isoformat()}",
                        reasons,
                        score=health.score,
                        open_key=f"at_risk:{tenant.tenant_id}",
                    )
                    await self._raise(uow, alert, now, report)
            for cause in await uow.alerts.pending_causes():
                if cause.kind == "detractor" and cause.survey_instance_id:
                    alert = NewAlert(
                        cause.tenant_id,
                        "detractor",
                        f"detractor:{cause.survey_instance_id}",
                        [_detractor_answer(cause.score, cause.created_at)],
                        survey_instance_id=cause.survey_instance_id,
                    )
                else:
                    key = cause.cause_key or f"{cause.kind}:{cause.id}"
                    alert = NewAlert(cause.tenant_id, cause.kind, key, stored_phrases(cause.detail or ""))
                raised = await self._raise(uow, alert, now, report)
                await uow.alerts.mark_cause(cause.id, "raised" if raised else "merged")
            for overdue in await uow.alerts.due_escalations(now):
                await self._escalate(uow, overdue, visibility, now, report)
            # every open alert reaches its current level; the outbox's dedupe key makes this idempotent, so a CSM who
            # installs the bot later still gets it, and a woken snooze is sent again
            for current in await uow.alerts.all(open_only=True):
                if current.status == "open":
                    again = f"woke:{now.date().isoformat()}" if current.id in woken else ""
                    await self._deliver(uow, current.id, current.escalation_level, visibility, now, report, again)
            await uow.commit()
        report.digests = await self._digests(now, visibility, healths)
        return report

    async def _raise(self, uow: UnitOfWork, alert: NewAlert, now: datetime, report: AlertRunReport) -> bool:
        """Record the alert (delivery follows in the same run); False while one for the same cause is open."""
        deadline = add_business_days(now, self.config.settings.escalate_after_business_days)
        alert_id = await uow.alerts.raise_alert(alert, now, deadline)
        if alert_id is None:
            return False
        report.raised[alert.kind] = report.raised.get(alert.kind, 0) + 1
        return True

    async def _escalate(
        self, uow: UnitOfWork, alert: Alert, visibility: Visibility, now: datetime, report: AlertRunReport
    ) -> None:
        levels = visibility.levels(alert.tenant_id, self.config.settings.escalation_conversation)
        level = alert.escalation_level + 1
        if level >= len(levels):
            await uow.alerts.update(alert.id, now, escalate_at=None)  # nobody further up: stays with the last level
            return
        deadline = add_business_days(now, self.config.settings.escalate_after_business_days)
        await uow.alerts.update(alert.id, now, escalation_level=level, escalate_at=deadline)
        await uow.alerts.log(alert.id, now, None, "escalated")
        report.escalated += 1

    async def _deliver(
        self,
        uow: UnitOfWork,
        alert_id: int,
        level: int,
        visibility: Visibility,
        now: datetime,
        report: AlertRunReport,
        again: str = "",
    ) -> None:
        alert = await uow.alerts.get(alert_id)
        if alert is None:
            return
        levels = visibility.levels(alert.tenant_id, self.config.settings.escalation_conversation)
        if level >= len(levels):
            report.undeliverable.append(f"alert {alert_id}: no CSM for tenant {alert.tenant_id}")
            return
        for recipient in levels[level]:
            key = f"alert:{alert_id}:{level}:{recipient}:{again}"
            if await uow.outbox.exists(key):
                continue  # this recipient has it already: no card to draw
            if recipient.startswith("channel:"):
                target = await uow.conversations.get(recipient.removeprefix("channel:"))
                if target is None or target.removed_at is not None:
                    report.undeliverable.append(f"alert {alert_id}: escalation channel not installed")
                    continue
                tenant_id, conversation_id = target.tenant_id, target.conversation_id
                user_id, viewer, locale = None, None, None
            else:
                chat = await self._chat_of(uow, recipient)
                if chat is None:
                    report.undeliverable.append(f"alert {alert_id}: CSM {recipient} has no chat with the bot")
                    continue
                tenant_id, user_id, conversation_id, locale = (
                    chat.tenant_id,
                    chat.user_id,
                    chat.conversation_id,
                    chat.locale,
                )
                viewer = recipient
            # the stored copy leaves the person's comment out (forgetting them must not leave it in a CSM's
            # outbox row); Teams refreshes the card for the CSM when they look at it, and that copy shows it
            card = await self._card(uow, alert, viewer, locale, visibility, escalated=level > 0, live=False)
            queued = await uow.outbox.enqueue(
                NewMessage.of_card(key, "alert", tenant_id, user_id, conversation_id, card), now
            )
            if queued is not None:
                report.cards += 1
                await uow.alerts.log(
                    alert_id, now, None, "sent", recipient if recipient.startswith("channel:") else None
                )

    async def _chat_of(self, uow: UnitOfWork, aad: str) -> CsmChat | None:
        """The CSM's personal chat with the bot, in any tenant."""
        for user in await uow.users.find_by_aad(aad):
            chat = await uow.conversations.personal_for(user.id)
            if chat is not None and user.uninstalled_at is None:
                return CsmChat(user.tenant_id, user.id, chat.conversation_id, user.locale, user.time_zone)
        return None

    # -- the alert card ----------------------------------------------------------------------------------------

    async def _card(
        self,
        uow: UnitOfWork,
        alert: Alert,
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
            account=_account(tenant, alert.tenant_id),
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

    # -- card actions ------------------------------------------------------------------------------------------

    def register(self, actions: CardActions) -> None:
        actions.add(Verb.ALERT_CLAIM, AlertData, self.claim)
        actions.add(Verb.ALERT_SNOOZE, AlertData, self.snooze)
        actions.add(Verb.ALERT_NOTE, AlertData, self.note)
        actions.add(Verb.ALERT_RESOLVE, AlertData, self.resolve)
        actions.add(Verb.ALERT_REFRESH, AlertData, self.refresh)

    async def claim(self, data: AlertData, actor: Actor, now: datetime) -> Card:
        """The first claim wins; a later one changes nothing and the card says who has it."""

        async def change(uow: UnitOfWork, alert: Alert, csm: str) -> str | None:
            if alert.status != "claimed":
                await uow.alerts.update(
                    alert.id, now, status="claimed", claimed_by=csm, snoozed_until=None, escalate_at=None
                )
                await uow.alerts.log(alert.id, now, csm, "claimed")
            return None

        return await self._act(data, actor, change)

    async def snooze(self, data: AlertData, actor: Actor, now: datetime) -> Card:
        """Out of sight for a week; escalated if still nobody's after the business days allowed."""

        async def change(uow: UnitOfWork, alert: Alert, csm: str) -> str | None:
            deadline = add_business_days(now + SNOOZE, self.config.settings.escalate_after_business_days)
            await uow.alerts.update(alert.id, now, status="snoozed", snoozed_until=now + SNOOZE, escalate_at=deadline)
            await uow.alerts.log(alert.id, now, csm, "snoozed")
            return None

        return await self._act(data, actor, change)

    async def note(self, data: AlertData, actor: Actor, now: datetime) -> Card:
        """Log outreach: the note goes into the alert's log."""

        async def change(uow: UnitOfWork, alert: Alert, csm: str) -> str | None:
            text = (data.note or "").strip()
            if not text:
                return "error.note_empty"
            if len(text) > NOTE_MAX_LENGTH:
                return "error.note_too_long"
            await uow.alerts.log(alert.id, now, csm, "note", text)
            await uow.alerts.update(alert.id, now)
            return None

        return await self._act(data, actor, change)

    async def resolve(self, data: AlertData, actor: Actor, now: datetime) -> Card:
        async def change(uow: UnitOfWork, alert: Alert, csm: str) -> str | None:
            await uow.alerts.update(
                alert.id, now, status="resolved", open_key=None, resolved_at=now, resolved_by=csm, escalate_at=None
            )
            await uow.alerts.log(alert.id, now, csm, "resolved")
            return None

        return await self._act(data, actor, change)

    async def refresh(self, data: AlertData, actor: Actor, now: datetime) -> Card:
        return await self._act(data, actor, None)

    async def _act(self, data: AlertData, actor: Actor, change: _Change | None) -> Card:
        """Apply `change` to the alert when the CSM may see its account and it is not resolved yet (a late click on
        a resolved alert changes nothing: the card shows who resolved it). The card comes back in its new state,
        naming who acted; above it, `change`'s card-string key when the input was refused (nothing stored then)."""
        csm = (actor.aad_object_id or "").lower()
        async with self.uow_factory() as uow:
            visibility = await self._visibility(uow)
            alert = await uow.alerts.get(data.alert, lock=True)
            if alert is None:
                raise Refused("error.unknown_alert")
            if not visibility.can_see(csm, alert.tenant_id):
                raise Refused("error.not_your_account")
            error = None
            if change is not None and alert.status != "resolved":
                error = await change(uow, alert, csm)
            await uow.commit()
            alert = await uow.alerts.get(data.alert)
            assert alert is not None
            return await self._card(uow, alert, csm, actor.locale, visibility, error=error)

    # -- commands ----------------------------------------------------------------------------------------------

    async def at_risk_card(self, viewer: str, locale: str | None, now: datetime) -> dict[str, Any]:
        visibility = await self.visibility()
        seen = [h for h in await self.health(now) if visibility.can_see(viewer, h.tenant_id)]
        t = Strings(locale)
        lines = [
            AccountLine(
                h.name or h.tenant_id,
                t("list.at_risk_line", score=f"{h.score:.0f}", arrow=h.arrow, reasons=_worded(t, h.reasons[:2])),
            )
            for h in sorted(seen, key=lambda h: h.score)
            if h.at_risk
        ]
        return build_account_list_card(locale, "list.at_risk", lines, "list.at_risk_none")

    async def renewals_card(self, viewer: str, locale: str | None, now: datetime) -> dict[str, Any]:
        visibility = await self.visibility()
        async with self.uow_factory() as uow:
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
                lines.append(AccountLine(_account(tenant, tenant.tenant_id), detail))
        return build_account_list_card(locale, "list.renewals", lines, "list.renewals_none")

    async def account_card(self, viewer: str, query: str, locale: str | None, now: datetime) -> dict[str, Any] | None:
        """The health card of the tenant named (id or display name); None when unknown or not the viewer's."""
        visibility = await self.visibility()
        async with self.uow_factory() as uow:
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
            health = assess(await self._signals(uow, match, now, installed), self.config.health, now)
            days = await uow.usage.tenant_days(match.tenant_id, now.date() - timedelta(days=29))
        series = [(str(d), days[d][0]) for d in sorted(days)]
        interval = health.nps.interval if health.nps.enough else None
        view = AccountView(
            locale=locale,
            account=_account(match, match.tenant_id),
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

    # -- digests -----------------------------------------------------------------------------------------------

    async def _digests(self, now: datetime, visibility: Visibility, healths: dict[str, Health]) -> int:
        """Each CSM's digest once a day in their morning; the health scores come from the run that just scored."""
        sent = 0
        async with self.uow_factory() as uow:
            due: list[tuple[str, CsmChat, datetime]] = []
            for csm in visibility.all_csms():
                chat = await self._chat_of(uow, csm)
                if chat is None:
                    continue
                local = local_time(now, chat.time_zone)
                if local.hour < self.config.settings.digest_hour or local.weekday() >= 5:
                    continue
                if not await uow.outbox.exists(f"digest:{csm}:{local.date().isoformat()}"):
                    due.append((csm, chat, local))
            if not due:
                return 0
            alerts = await uow.alerts.all()
            tenants = {t.tenant_id: t for t in await uow.alerts.tenants()}
            answers = await uow.surveys.scored_answers()
            for csm, chat, local in due:
                seen = [t for t in tenants if visibility.can_see(csm, t)]
                view = self._digest_view(seen, tenants, healths, alerts, answers, chat.locale, local, now)
                key = f"digest:{csm}:{local.date().isoformat()}"
                message = NewMessage.of_card(
                    key, "digest", chat.tenant_id, chat.user_id, chat.conversation_id, build_digest_card(view)
                )
                sent += await uow.outbox.enqueue(message, now) is not None
            await uow.commit()
        return sent

    def _digest_view(
        self,
        seen: list[str],
        tenants: dict[str, Tenant],
        healths: dict[str, Health],
        alerts: Sequence[Alert],
        answers: Sequence[Any],
        locale: str | None,
        local: datetime,
        now: datetime,
    ) -> DigestView:
        words = Strings(locale)
        name = {t: _account(tenants[t], t) for t in seen}
        new_alerts = [
            AccountLine(
                name[a.tenant_id],
                f"{words(f'alert.kind.{a.kind}')}: {_worded(words, stored_phrases(a.reasons)[:1])}",
            )
            for a in alerts
            if a.tenant_id in name and now - a.created_at <= timedelta(days=1)
        ]
        down = []
        for t in seen:
            health = healths.get(t)
            if health is not None and health.arrow == "↓" and health.previous is not None:
                scores = {"score": f"{health.score:.0f}", "arrow": health.arrow, "previous": f"{health.previous:.0f}"}
                down.append(AccountLine(name[t], words("digest.was", **scores)))
        movers = []
        for t in seen:
            recent = [a.score for a in answers if a.tenant_id == t and now - a.answered_at <= timedelta(days=90)]
            earlier = [
                a.score
                for a in answers
                if a.tenant_id == t and timedelta(days=90) < now - a.answered_at <= timedelta(days=180)
            ]
            change = compare(
                summarize(recent, min_answers=self.config.health.min_answers),
                summarize(earlier, min_answers=self.config.health.min_answers),
            )
            if change.significant and change.delta is not None and change.p_value is not None:
                movers.append(AccountLine(name[t], words("digest.nps_moved", delta=change.delta, p=change.p_value)))
        renewals = []
        for t in seen:
            renewal = tenants[t].renewal_date
            if renewal is not None and 0 <= (renewal - now.date()).days <= 31:
                when = {"date": renewal.isoformat(), "days": (renewal - now.date()).days}
                renewals.append(AccountLine(name[t], words("list.renewal_line", **when)))
        return DigestView(locale, local.date().isoformat(), new_alerts, down, movers, renewals)


def _detractor_answer(score: int | None, at: datetime) -> Phrase:
    return Phrase("reason.detractor_answer", {"score": "?" if score is None else score, "date": f"{at:%Y-%m-%d}"})


def _worded(t: Strings, reasons: Iterable[Phrase | str]) -> str:
    return "; ".join(t.phrase(reason) for reason in reasons)


def _account(tenant: Tenant | None, tenant_id: str) -> str:
    return tenant.display_name if tenant is not None and tenant.display_name else tenant_id
