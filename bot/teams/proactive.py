"""Sending a card into a stored conversation on Nurture's own initiative (continue_conversation)."""

from __future__ import annotations

from typing import Any

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ChannelAccount, ConversationAccount
from botbuilder.schema import ConversationReference as BotReference

from storage.models import ConversationReference


class TeamsCardSender:
    """Rebuilds botbuilder's reference from the stored fields (which hold no display names) and sends one card."""

    def __init__(self, adapter: CloudAdapter, app_id: str) -> None:
        self.adapter = adapter
        self.app_id = app_id

    async def send_card(self, target: ConversationReference, card: dict[str, Any], summary: str) -> str | None:
        reference = BotReference(
            channel_id=target.channel_id,
            service_url=target.service_url,
            bot=ChannelAccount(id=target.bot_id),
            conversation=ConversationAccount(
                id=target.conversation_id,
                conversation_type=target.scope if target.scope != "team" else "channel",
                tenant_id=target.tenant_id,
            ),
        )
        sent: dict[str, str | None] = {}

        async def deliver(context: TurnContext) -> None:
            message = MessageFactory.attachment(CardFactory.adaptive_card(card))
            message.summary = summary
            response = await context.send_activity(message)
            sent["id"] = response.id if response else None

        await self.adapter.continue_conversation(reference, deliver, bot_app_id=self.app_id)
        return sent.get("id")
