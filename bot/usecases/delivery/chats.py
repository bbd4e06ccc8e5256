"""Opening the personal chat a queued message waits for: Bot Framework create_conversation and, where switched on
and Teams refuses, a proactive install through Microsoft Graph (bot.engagement.reach says when each applies)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot import telemetry
from bot.engagement.delivery import RetryPolicy, Status, judge_opening
from bot.engagement.reach import pending_user
from bot.usecases.delivery.outcomes import OutcomeWriter
from bot.usecases.delivery.pacing import TenantPacer, graph_bucket
from bot.usecases.delivery.ports import AppInstaller, ChatOpener, SendOutcome
from bot.usecases.ports import DeliveryUnitOfWork, Queued
from storage.people import ConversationTarget

log = logging.getLogger(__name__)

# Graph's limit on installs a second per tenant, and a lower average that leaves room for jitter on the way
# (send_window)
GRAPH_INSTALL_LIMIT = 30
GRAPH_INSTALLS_PER_SECOND = 25.0


@dataclass
class _Turnstile:
    """One chat opening at a time per person; forgotten when nobody waits for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class ChatOpenings:
    uow_factory: Callable[[], DeliveryUnitOfWork]
    clock: Callable[[], datetime]
    pacer: TenantPacer
    outcomes: OutcomeWriter
    retry: RetryPolicy
    rng: random.Random
    opener: ChatOpener | None = None
    installer: AppInstaller | None = None
    _opening: dict[str, _Turnstile] = field(default_factory=dict)

    async def open(self, row: Queued) -> str | None:
        """Open the chat a message waits for: create_conversation, then (when configured and Teams refuses) a Graph
        proactive install. Returns the conversation id, or None when the row's outcome was recorded instead.

        One open at a time per person in this process; other processes never hold the same person's rows at once
        (OutboxRepository.claim keeps a conversation id, pending ones included, to one process).
        """
        turnstile = self._opening.setdefault(row.conversation_id, _Turnstile())
        turnstile.users += 1
        try:
            async with turnstile.lock:
                return await self._open_locked(row)
        finally:
            turnstile.users -= 1
            if turnstile.users == 0:  # nobody waits for this person any more
                del self._opening[row.conversation_id]

    async def _open_locked(self, row: Queued) -> str | None:
        user_id = pending_user(row.conversation_id)
        async with self.uow_factory() as uow:
            user = await uow.users.get_by_id(user_id) if user_id is not None else None
            chat = await uow.conversations.personal_for(user.id) if user is not None else None
            if chat is not None:  # opened meanwhile (an earlier message, or the person wrote to the bot)
                await uow.outbox.retarget(row.conversation_id, chat.conversation_id)
                await uow.commit()
                return chat.conversation_id
            anchor = await uow.conversations.anchor(row.tenant_id) if user is not None else None
            if user is None or anchor is None or self.opener is None or user.uninstalled_at is not None:
                reason = "no personal chat, and no way to open one (bot not in the tenant, or opening chats is off)"
                await self.outcomes.finish(uow, row, Status.CANCELLED, None, None, reason, None)
                await uow.commit()
                return None
        await self.pacer.turn(row.tenant_id, row.tenant_id)  # it counts against the tenant's rate
        try:
            outcome = await self.opener.attempt_open(anchor, user.aad_object_id)
        finally:
            self.pacer.answered(row.tenant_id)
        bucket = row.tenant_id
        if outcome.conversation_id is None and self.installer is not None and outcome.result.status_code in (403, 404):
            # not in a team or chat with the bot: install the app for the person, which opens the chat
            bucket = graph_bucket(row.tenant_id)

            paced = False

            async def pace() -> None:
                nonlocal paced
                await self.pacer.turn(bucket, row.tenant_id, GRAPH_INSTALL_LIMIT, GRAPH_INSTALLS_PER_SECOND)
                paced = True

            try:
                outcome = await self.installer.attempt_install(row.tenant_id, user.aad_object_id, pace)
            finally:
                if paced:
                    self.pacer.answered(bucket)
        now = self.clock()
        if outcome.conversation_id is None:
            verdict = judge_opening(outcome.result, row.attempts, now, self.retry, self.rng)
            code = outcome.result.status_code
            await self.outcomes.record(row, verdict, code, SendOutcome(outcome.result), now, bucket)
            telemetry.sends.add(1, {"kind": row.kind, "outcome": f"open-{verdict.status.value}"})
            return None
        async with self.uow_factory() as uow:
            target = ConversationTarget(
                conversation_id=outcome.conversation_id,
                tenant_id=row.tenant_id,
                scope="personal",
                channel_id=anchor.channel_id,
                service_url=anchor.service_url,
                bot_id=anchor.bot_id,
                user_id=user.id,
            )
            await uow.conversations.upsert(target, now)
            if user.installed_at is None:
                await uow.users.mark_installed(user.id, now)  # the app is in their personal scope now
            await uow.outbox.retarget(row.conversation_id, outcome.conversation_id)
            await uow.commit()
        log.info("opened a personal chat for outbox row %s (%s)", row.id, bucket)
        return outcome.conversation_id
