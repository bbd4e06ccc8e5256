"""What a CSM does on an alert card: claim, snooze, log outreach, resolve, refresh."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.engagement.business_days import add_business_days
from bot.usecases.alerts.accounts import Accounts
from bot.usecases.card_actions import ActionData, Actor, Card, CardActions, Refused, RowId
from bot.usecases.ports import AlertRecord, AlertsUnitOfWork
from cards.alerts import NOTE_MAX_LENGTH
from cards.verbs import Verb

SNOOZE = timedelta(days=7)
# a card action's change to an alert, by the CSM named: a card-string key when the input is refused, else None
_Change = Callable[[AlertsUnitOfWork, AlertRecord, str], Awaitable[str | None]]


class AlertData(ActionData):
    alert: RowId
    note: str | None = None


@dataclass
class AlertActions:
    accounts: Accounts

    def register(self, actions: CardActions) -> None:
        actions.add(Verb.ALERT_CLAIM, AlertData, self.claim)
        actions.add(Verb.ALERT_SNOOZE, AlertData, self.snooze)
        actions.add(Verb.ALERT_NOTE, AlertData, self.note)
        actions.add(Verb.ALERT_RESOLVE, AlertData, self.resolve)
        actions.add(Verb.ALERT_REFRESH, AlertData, self.refresh)

    async def claim(self, data: AlertData, actor: Actor, now: datetime) -> Card:
        """The first claim wins; a later one changes nothing and the card says who has it."""

        async def change(uow: AlertsUnitOfWork, alert: AlertRecord, csm: str) -> str | None:
            if alert.status != "claimed":
                await uow.alerts.update(
                    alert.id, now, status="claimed", claimed_by=csm, snoozed_until=None, escalate_at=None
                )
                await uow.alerts.log(alert.id, now, csm, "claimed")
            return None

        return await self._act(data, actor, change)

    async def snooze(self, data: AlertData, actor: Actor, now: datetime) -> Card:
        """Out of sight for a week; escalated if still nobody's after the business days allowed."""

        async def change(uow: AlertsUnitOfWork, alert: AlertRecord, csm: str) -> str | None:
            deadline = add_business_days(now + SNOOZE, self.accounts.config.settings.escalate_after_business_days)
            await uow.alerts.update(alert.id, now, status="snoozed", snoozed_until=now + SNOOZE, escalate_at=deadline)
            await uow.alerts.log(alert.id, now, csm, "snoozed")
            return None

        return await self._act(data, actor, change)

    async def note(self, data: AlertData, actor: Actor, now: datetime) -> Card:
        """Log outreach: the note goes into the alert's log."""

        async def change(uow: AlertsUnitOfWork, alert: AlertRecord, csm: str) -> str | None:
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
        async def change(uow: AlertsUnitOfWork, alert: AlertRecord, csm: str) -> str | None:
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
        async with self.accounts.uow_factory() as uow:
            visibility = await self.accounts.visibility_in(uow)
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
            return await self.accounts.alert_card(uow, alert, csm, actor.locale, visibility, error=error)
