"""Sending, updating and deleting cards in a stored conversation on Nurture's own initiative (continue_conversation)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import requests
from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationParameters
from botbuilder.schema import ConversationReference as BotReference
from msrest.exceptions import ClientRequestError, HttpOperationError

from bot.engagement.delivery import AttemptResult
from bot.teams.adapter import ServiceUrlRefused
from bot.usecases.delivery import OpenOutcome, SendOutcome
from storage.models import ConversationReference

log = logging.getLogger(__name__)


class TeamsCardSender:
    """Rebuilds botbuilder's reference from the stored fields (which hold no display names) and sends one card."""

    def __init__(self, adapter: CloudAdapter, app_id: str) -> None:
        self.adapter = adapter
        self.app_id = app_id

    def _reference(self, target: ConversationReference) -> BotReference:
        return BotReference(
            channel_id=target.channel_id,
            service_url=target.service_url,
            bot=ChannelAccount(id=target.bot_id),
            conversation=ConversationAccount(
                id=target.conversation_id,
                conversation_type=target.scope if target.scope != "team" else "channel",
                tenant_id=target.tenant_id,
            ),
        )

    async def send_card(self, target: ConversationReference, card: dict[str, Any], summary: str) -> str | None:
        """Send; raises what the SDK raises. Returns the Teams activity id."""
        sent: dict[str, str | None] = {}

        async def deliver(context: TurnContext) -> None:
            message = MessageFactory.attachment(CardFactory.adaptive_card(card))
            message.summary = summary
            response = await context.send_activity(message)
            sent["id"] = response.id if response else None

        await self.adapter.continue_conversation(self._reference(target), deliver, bot_app_id=self.app_id)
        return sent.get("id")

    async def update_card(
        self, target: ConversationReference, activity_id: str, card: dict[str, Any], summary: str
    ) -> str:
        """Replace a card sent before (PUT on the activity)."""

        async def change(context: TurnContext) -> None:
            message = MessageFactory.attachment(CardFactory.adaptive_card(card))
            message.summary = summary
            message.id = activity_id
            await context.update_activity(message)

        await self.adapter.continue_conversation(self._reference(target), change, bot_app_id=self.app_id)
        return activity_id

    async def delete_card(self, target: ConversationReference, activity_id: str) -> str:
        """Take a card back (DELETE on the activity)."""

        async def remove(context: TurnContext) -> None:
            await context.delete_activity(activity_id)

        await self.adapter.continue_conversation(self._reference(target), remove, bot_app_id=self.app_id)
        return activity_id

    async def open_chat(self, anchor: ConversationReference, aad_object_id: str) -> str:
        """Create (or find: Teams answers with the existing one) the person's 1:1 chat with the bot.

        CloudAdapter does not copy the tenant into the request as BotFrameworkAdapter did: without
        `tenant_id` and `channelData.tenant.id` Teams refuses it.
        """
        opened: dict[str, str] = {}
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=anchor.bot_id),
            members=[ChannelAccount(id=aad_object_id)],
            tenant_id=anchor.tenant_id,
            channel_data={"tenant": {"id": anchor.tenant_id}},
        )

        async def remember(context: TurnContext) -> None:
            opened["id"] = context.activity.conversation.id

        await self.adapter.create_conversation(
            self.app_id, remember, parameters, anchor.channel_id, anchor.service_url, None
        )
        return opened["id"]

    async def attempt_open(self, anchor: ConversationReference, aad_object_id: str) -> OpenOutcome:
        outcome = await self._attempt(anchor, lambda: self.open_chat(anchor, aad_object_id))
        return OpenOutcome(outcome.result, outcome.activity_id)  # on success the "activity id" is the chat's id

    async def attempt(self, target: ConversationReference, card: dict[str, Any], summary: str) -> SendOutcome:
        """Send once and report what the connector said, for the outbox's retry policy."""
        return await self._attempt(target, lambda: self.send_card(target, card, summary))

    async def attempt_update(
        self, target: ConversationReference, activity_id: str, card: dict[str, Any], summary: str
    ) -> SendOutcome:
        return await self._attempt(target, lambda: self.update_card(target, activity_id, card, summary))

    async def attempt_delete(self, target: ConversationReference, activity_id: str) -> SendOutcome:
        return await self._attempt(target, lambda: self.delete_card(target, activity_id))

    async def _attempt(self, target: ConversationReference, call: Callable[[], Awaitable[str | None]]) -> SendOutcome:
        try:
            activity_id = await call()
        except HttpOperationError as exc:
            response = exc.response
            status = getattr(response, "status_code", None)
            headers = getattr(response, "headers", None) or {}
            return SendOutcome(AttemptResult(status, _error_code(response), headers.get("Retry-After")))
        except ServiceUrlRefused as exc:
            return SendOutcome(AttemptResult(None, f"refused: {exc}", request_sent=False, refused=True))
        except ClientRequestError as exc:
            cause = exc.inner_exception if hasattr(exc, "inner_exception") else exc.__cause__
            sent = not isinstance(cause, requests.exceptions.ConnectionError) or isinstance(
                cause, requests.exceptions.ReadTimeout
            )
            log.warning("send to %s failed without an answer: %s", target.service_url, type(cause).__name__)
            return SendOutcome(AttemptResult(None, type(cause).__name__, request_sent=sent))
        return SendOutcome(AttemptResult(200), activity_id)  # the SDK raises on non-2xx; success carries no code


def _error_code(response: Any) -> str | None:
    try:
        body = response.json()
    except (ValueError, AttributeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code")) if isinstance(error, dict) and error.get("code") else None
