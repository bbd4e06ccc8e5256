"""Running campaigns: load each tenant's people from the rollups, target (pure), queue cards, honour "stop these".

`plan` is the dry run behind `nurture targets`; `run` records a touch per decision and queues the card into the
outbox (delivery workers send it). A held-out person gets a touch and no card: that is the control group of
`nurture campaigns report`. Renewal reminders become pending CSM alerts (the alerting engine delivers them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from bot.engagement.asking import AskPolicy
from bot.engagement.campaigns import CampaignSet
from bot.engagement.kinds import Renewal, RenewalTarget
from bot.engagement.phrases import phrase_json
from bot.engagement.reach import ChatOpening, pending_chat
from bot.engagement.targeting import Outcome, Target
from bot.usecases.audience import Audience, BulkWork
from bot.usecases.card_actions import ActionData, Actor, Card, CardActions, Refused, RowId
from bot.usecases.ports import CampaignsUnitOfWork
from cards.i18n import negotiate
from cards.nurture import NurtureCardView, NurtureState, build_nurture_card
from cards.verbs import Verb
from storage.campaigns import NewTouch
from storage.outbox import NewMessage
from storage.sql import ROWS_PER_INSERT


@dataclass(frozen=True)
class CampaignConfig:
    campaigns: CampaignSet
    policy: AskPolicy
    product_name: str
    opening: ChatOpening = ChatOpening.CREATE  # NURTURE_OPEN_CHATS: people without a chat get one opened


@dataclass(frozen=True)
class Plan:
    targets: list[Target]
    renewals: list[RenewalTarget]


@dataclass
class RunReport:
    queued: int = 0
    held_out: int = 0
    renewal_alerts: int = 0
    already_done: int = 0  # a concurrent run recorded the same step first
    by_campaign: dict[str, int] = field(default_factory=dict)


class TouchData(ActionData):
    touch: RowId


_BATCH = ROWS_PER_INSERT  # decisions recorded together: their touches in one statement, their cards in another


@dataclass
class Campaigns:
    uow_factory: Callable[[], CampaignsUnitOfWork]
    config: CampaignConfig
    bulk_work: BulkWork = nullcontext  # entered around deciding an audience (bot.tuning.collector_paused)

    # -- targeting ---------------------------------------------------------------------------------------------

    async def plan(self, now: datetime, tenant_id: str | None = None) -> Plan:
        """Every match with its outcome and reason, and the renewal reminders due. Stores nothing."""
        audience = self._audience(now)
        async with self.uow_factory() as uow:
            if audience.only_reads:  # answers and usage batches arriving meanwhile need not wait for it
                await uow.reads_only()
            targets = await audience.decisions(uow, tenant_id)
            renewals = await self._renewals(uow, now, tenant_id)
        return Plan(targets, renewals)

    async def run(self, now: datetime, tenant_id: str | None = None) -> RunReport:
        """Evaluate once and queue: one transaction per tenant, so a failure never half-queues a tenant."""
        report = RunReport()
        chosen: dict[str, list[Target]] = {}
        audience = self._audience(now)
        async with self.uow_factory() as uow:  # decided for every tenant at once (one pass over the tables) …
            if audience.only_reads:
                await uow.reads_only()
            for target in await audience.decisions(uow, tenant_id):
                if target.outcome in (Outcome.SEND, Outcome.HOLDOUT):
                    chosen.setdefault(target.tenant_id, []).append(target)
            await uow.commit()  # INSTALL mode: the app users it adopted
        for targets in chosen.values():  # … and queued tenant by tenant, many rows a statement
            async with self.uow_factory() as uow:
                chats = await uow.campaigns.chats([_user_row(t) for t in targets])
                for start in range(0, len(targets), _BATCH):
                    await self._record(uow, targets[start : start + _BATCH], chats, now, report)
                await uow.commit()
        async with self.uow_factory() as uow:
            for renewal in await self._renewals(uow, now, tenant_id):
                report.renewal_alerts += await uow.campaigns.add_renewal_alert(
                    renewal.tenant_id, renewal.cause_key, json.dumps(phrase_json(renewal.phrase)), now
                )
            await uow.commit()
        return report

    def _audience(self, now: datetime) -> Audience:
        return Audience(self.config.campaigns, self.config.policy, self.config.opening, now, self.bulk_work)

    async def _record(
        self, uow: CampaignsUnitOfWork, targets: list[Target], chats: dict[int, str], now: datetime, report: RunReport
    ) -> None:
        """A touch per decision; for each one sent, its card queued and linked to the touch."""
        touches = [
            NewTouch(
                t.campaign_id, t.kind, t.step, t.tenant_id, t.aad_object_id, t.outcome is Outcome.HOLDOUT, t.reason
            )
            for t in targets
        ]
        messages: list[NewMessage] = []
        sent: list[tuple[int, str]] = []  # (touch, campaign) of each message
        ids = await uow.campaigns.add_touches(touches, now)
        for decided, touch_id in zip(targets, ids, strict=True):
            if touch_id is None:
                report.already_done += 1
            elif decided.outcome is Outcome.HOLDOUT:
                report.held_out += 1
            else:
                # targeting only picks reachable people: one without a chat gets it opened by the delivery worker first
                user_id = _user_row(decided)
                chat_id = chats.get(user_id) or pending_chat(user_id)
                card = build_nurture_card(self._view(touch_id, decided, decided.locale))
                key = f"campaign-touch:{touch_id}"
                messages.append(
                    NewMessage.of_card(key, decided.kind, decided.tenant_id, user_id, chat_id, card, quiet_hours=True)
                )
                sent.append((touch_id, decided.campaign_id))
        links = []
        queued = await uow.outbox.enqueue_many(messages, now)
        for (touch_id, campaign_id), message_id in zip(sent, queued, strict=True):
            if message_id is not None:
                links.append((touch_id, message_id))
                report.queued += 1
                report.by_campaign[campaign_id] = report.by_campaign.get(campaign_id, 0) + 1
        await uow.campaigns.link_outbox(links)

    async def _renewals(self, uow: CampaignsUnitOfWork, now: datetime, tenant_id: str | None) -> list[RenewalTarget]:
        found: list[RenewalTarget] = []
        renewals = await uow.tenants.renewals()
        if tenant_id:
            renewals = {t: d for t, d in renewals.items() if t == tenant_id}
        already = await uow.campaigns.renewal_alert_keys()
        for campaign in self.config.campaigns.active:
            if isinstance(campaign, Renewal):
                found += campaign.targets(renewals, already, now.date())
        return found

    # -- the card ----------------------------------------------------------------------------------------------

    def _view(self, touch_id: int, decided: Target, locale: str | None) -> NurtureCardView:
        campaigns = self.config.campaigns
        campaign = campaigns.get(decided.campaign_id)
        language = negotiate(locale)
        facts = decided.facts
        feature = str(facts["feature"]) if "feature" in facts else campaign.card_event()
        title = text = None
        link = campaign.link or campaigns.feature_link(feature)
        step = campaign.step_card(facts)
        if step is not None:
            title = step.title.get(language) if step.title else None
            text = step.text.get(language) if step.text else None
            link = step.link or link
        count = facts.get("count")
        days = facts.get("days", facts.get("day"))
        return NurtureCardView(
            touch_id=touch_id,
            kind=decided.kind,
            step=decided.step,
            product_name=self.config.product_name,
            locale=locale,
            feature=campaigns.feature_label(feature, language) if feature else None,
            count=int(count) if count is not None else None,
            days=int(days) if days is not None else None,
            title=title,
            text=text,
            link=link,
        )

    # -- "not useful — stop these" -----------------------------------------------------------------------------

    def register(self, actions: CardActions) -> None:
        actions.add(Verb.NURTURE_STOP, TouchData, self.stop)
        actions.add(Verb.NURTURE_RESUME, TouchData, self.resume)

    async def stop(self, data: TouchData, actor: Actor, now: datetime) -> Card:
        """No more messages of the kind of the touch clicked, for the person clicking; the card says so."""
        return await self._stop_or_resume(data.touch, actor, now, stop=True)

    async def resume(self, data: TouchData, actor: Actor, now: datetime) -> Card:
        """Undo: messages of that kind again."""
        return await self._stop_or_resume(data.touch, actor, now, stop=False)

    async def _stop_or_resume(self, touch_id: int, actor: Actor, now: datetime, *, stop: bool) -> Card:
        async with self.uow_factory() as uow:
            touch = await uow.campaigns.touch(touch_id)
            if touch is None:
                raise Refused("error.unknown_message")
            if touch.tenant_id != actor.tenant_id or touch.aad_object_id != actor.aad_object_id:
                raise Refused("error.not_your_message")  # only the recipient may do it
            user = await uow.users.get(touch.tenant_id, touch.aad_object_id)
            if user is None:
                raise Refused("error.unknown_message")
            if stop:
                await uow.campaigns.stop(user.id, touch.kind, now)
            else:
                await uow.campaigns.resume(user.id, touch.kind)
            await uow.commit()
        state = NurtureState.STOPPED if stop else NurtureState.RESUMED
        view = NurtureCardView(touch_id, touch.kind, touch.step, self.config.product_name, actor.locale, state=state)
        return build_nurture_card(view)


def _user_row(target: Target) -> int:
    """The user row of a target the audience decided (it always names one)."""
    if target.user_id is None:
        raise ValueError(f"{target.tenant_id}:{target.aad_object_id}: a campaign target without a user row")
    return target.user_id
