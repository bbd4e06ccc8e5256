"""One alert run (`nurture run-alerts`, or the scheduler in `serve`).

Wake snoozed alerts, score every tenant and raise an at-risk alert when one crosses below the threshold, turn pending
causes (detractor answers, renewals) into alerts, send each new alert to the tenant's first CSM, escalate what nobody
claimed in time, then send the digests that are due. Every card goes through the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.engagement.business_days import add_business_days
from bot.engagement.health import Health, assess
from bot.engagement.phrases import Phrase, stored_phrases
from bot.usecases.alerts.accounts import Accounts, Visibility
from bot.usecases.alerts.digests import Digests
from bot.usecases.ports import AlertRecord, AlertsUnitOfWork
from storage.alerts import NewAlert
from storage.outbox import NewMessage


@dataclass
class AlertRunReport:
    tenants: int = 0
    raised: dict[str, int] = field(default_factory=dict)
    escalated: int = 0
    cards: int = 0
    digests: int = 0
    undeliverable: list[str] = field(default_factory=list)  # CSMs without a chat with the bot


@dataclass
class AlertRun:
    accounts: Accounts
    digests: Digests

    async def run(self, now: datetime) -> AlertRunReport:
        report = AlertRunReport()
        async with self.accounts.uow_factory() as uow:
            visibility = await self.accounts.visibility_in(uow)
            woken = await uow.alerts.wake_snoozed(now)
            for alert_id in woken:
                await uow.alerts.log(alert_id, now, None, "reopened")
            installed = await uow.alerts.installed_counts()
            healths: dict[str, Health] = {}
            for tenant in await uow.alerts.tenants():
                report.tenants += 1
                health = assess(
                    await self.accounts.signals(uow, tenant, now, installed), self.accounts.config.health, now
                )
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
        report.digests = await self.digests.send(now, visibility, healths)
        return report

    async def _raise(self, uow: AlertsUnitOfWork, alert: NewAlert, now: datetime, report: AlertRunReport) -> bool:
        """Record the alert (delivery follows in the same run); False while one for the same cause is open."""
        deadline = add_business_days(now, self.accounts.config.settings.escalate_after_business_days)
        alert_id = await uow.alerts.raise_alert(alert, now, deadline)
        if alert_id is None:
            return False
        report.raised[alert.kind] = report.raised.get(alert.kind, 0) + 1
        return True

    async def _escalate(
        self, uow: AlertsUnitOfWork, alert: AlertRecord, visibility: Visibility, now: datetime, report: AlertRunReport
    ) -> None:
        levels = visibility.levels(alert.tenant_id, self.accounts.config.settings.escalation_conversation)
        level = alert.escalation_level + 1
        if level >= len(levels):
            await uow.alerts.update(alert.id, now, escalate_at=None)  # nobody further up: stays with the last level
            return
        deadline = add_business_days(now, self.accounts.config.settings.escalate_after_business_days)
        await uow.alerts.update(alert.id, now, escalation_level=level, escalate_at=deadline)
        await uow.alerts.log(alert.id, now, None, "escalated")
        report.escalated += 1

    async def _deliver(
        self,
        uow: AlertsUnitOfWork,
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
        levels = visibility.levels(alert.tenant_id, self.accounts.config.settings.escalation_conversation)
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
                chat = await self.accounts.chat_of(uow, recipient)
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
            card = await self.accounts.alert_card(
                uow, alert, viewer, locale, visibility, escalated=level > 0, live=False
            )
            queued = await uow.outbox.enqueue(
                NewMessage.of_card(key, "alert", tenant_id, user_id, conversation_id, card), now
            )
            if queued is not None:
                report.cards += 1
                await uow.alerts.log(
                    alert_id, now, None, "sent", recipient if recipient.startswith("channel:") else None
                )


def _detractor_answer(score: int | None, at: datetime) -> Phrase:
    return Phrase("reason.detractor_answer", {"score": "?" if score is None else score, "date": f"{at:%Y-%m-%d}"})
