"""Each CSM's daily digest, in their morning: new alerts, falling health, NPS that moved, renewals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.engagement.asking import local_time
from bot.engagement.health import Health
from bot.engagement.nps import compare, summarize
from bot.engagement.phrases import stored_phrases
from bot.usecases.alerts.accounts import Accounts, CsmChat, Visibility, account_name, worded
from bot.usecases.ports import Account, AlertRecord
from cards.alerts import (
    AccountLine,
    DigestView,
    build_digest_card,
)
from cards.i18n import Strings
from storage.outbox import NewMessage
from storage.surveys import ScoredAnswer


@dataclass
class Digests:
    accounts: Accounts

    async def send(self, now: datetime, visibility: Visibility, healths: dict[str, Health]) -> int:
        """Each CSM's digest once a day in their morning; the health scores come from the run that just scored."""
        sent = 0
        async with self.accounts.uow_factory() as uow:
            due: list[tuple[str, CsmChat, datetime]] = []
            for csm in visibility.all_csms():
                chat = await self.accounts.chat_of(uow, csm)
                if chat is None:
                    continue
                local = local_time(now, chat.time_zone)
                if local.hour < self.accounts.config.settings.digest_hour or local.weekday() >= 5:
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
                view = self._view(seen, tenants, healths, alerts, answers, chat.locale, local, now)
                key = f"digest:{csm}:{local.date().isoformat()}"
                message = NewMessage.of_card(
                    key, "digest", chat.tenant_id, chat.user_id, chat.conversation_id, build_digest_card(view)
                )
                sent += await uow.outbox.enqueue(message, now) is not None
            await uow.commit()
        return sent

    def _view(
        self,
        seen: list[str],
        tenants: dict[str, Account],
        healths: dict[str, Health],
        alerts: Sequence[AlertRecord],
        answers: Sequence[ScoredAnswer],
        locale: str | None,
        local: datetime,
        now: datetime,
    ) -> DigestView:
        words = Strings(locale)
        name = {t: account_name(tenants[t], t) for t in seen}
        new_alerts = [
            AccountLine(
                name[a.tenant_id],
                f"{words(f'alert.kind.{a.kind}')}: {worded(words, stored_phrases(a.reasons)[:1])}",
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
                summarize(recent, min_answers=self.accounts.config.health.min_answers),
                summarize(earlier, min_answers=self.accounts.config.health.min_answers),
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
