"""Sending, updating and deleting cards in a stored conversation, and opening 1:1 chats, on Nurture's own initiative.

The requests go straight to the Bot Connector REST API (bot.teams.bot_connector), not through botbuilder's
continue_conversation: see that module for why. The activities carry what botbuilder would have copied from the
conversation reference (channel, service URL, bot, conversation with its tenant).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.engagement.delivery import AttemptResult
from bot.teams.bot_connector import BotConnectorClient, ConnectorAnswer, ConnectorRefused
from bot.usecases.delivery.ports import OpenOutcome, SendOutcome
from bot.usecases.ports import Conversation

log = logging.getLogger(__name__)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


class TeamsCardSender:
    """One attempt per call, reported as an AttemptResult for the outbox's retry policy; never raises for what the
    connector answers (or for a service URL off the allow-list: that is `refused`)."""

    def __init__(self, connector: BotConnectorClient) -> None:
        self.connector = connector

    async def close(self) -> None:
        await self.connector.close()

    async def attempt(self, target: Conversation, card: dict[str, Any], summary: str) -> SendOutcome:
        """Send once and report what the connector said."""
        return await self._attempt(
            target,
            lambda: self.connector.send(target.service_url, target.conversation_id, _message(target, card, summary)),
        )

    async def attempt_update(
        self, target: Conversation, activity_id: str, card: dict[str, Any], summary: str
    ) -> SendOutcome:
        """Replace a card sent before (PUT on the activity)."""
        message = _message(target, card, summary) | {"id": activity_id}
        return await self._attempt(
            target,
            lambda: self.connector.update(target.service_url, target.conversation_id, activity_id, message),
            activity_id,
        )

    async def attempt_delete(self, target: Conversation, activity_id: str) -> SendOutcome:
        """Take a card back (DELETE on the activity)."""
        return await self._attempt(
            target, lambda: self.connector.delete(target.service_url, target.conversation_id, activity_id), activity_id
        )

    async def attempt_open(self, anchor: Conversation, aad_object_id: str) -> OpenOutcome:
        """Create (or find: Teams answers with the existing one) the person's 1:1 chat with the bot.

        The tenant must be named (`tenantId` and `channelData.tenant.id`): without it Teams refuses the request.
        On success the outcome's id is the chat's conversation id.
        """
        parameters = {
            "isGroup": False,
            "bot": {"id": anchor.bot_id},
            "members": [{"id": aad_object_id}],
            "tenantId": anchor.tenant_id,
            "channelData": {"tenant": {"id": anchor.tenant_id}},
        }
        outcome = await self._attempt(
            anchor, lambda: self.connector.create_conversation(anchor.service_url, parameters)
        )
        return OpenOutcome(outcome.result, outcome.activity_id)

    async def _attempt(
        self, target: Conversation, call: Callable[[], Awaitable[ConnectorAnswer]], known_id: str | None = None
    ) -> SendOutcome:
        """`known_id`: the activity an update or delete is about (what the outcome names); otherwise the id Teams
        gave the new activity (or chat)."""
        try:
            answer = await call()
        except ConnectorRefused as exc:
            return SendOutcome(AttemptResult(None, f"refused: {exc}", request_sent=False, refused=True))
        if answer.status is None:
            log.warning("call to %s failed without an answer: %s", target.service_url, answer.failure)
            if answer.refused:  # the HTTP client would not send it: nothing left
                return SendOutcome(AttemptResult(None, f"refused: {answer.failure}", request_sent=False, refused=True))
            return SendOutcome(AttemptResult(None, answer.failure, request_sent=answer.request_sent))
        if not answer.ok:
            return SendOutcome(AttemptResult(answer.status, answer.error_code, answer.retry_after))
        if known_id is not None:
            return SendOutcome(AttemptResult(answer.status), known_id)
        created = (answer.body or {}).get("id")
        return SendOutcome(AttemptResult(answer.status), str(created) if created else None)


def _message(target: Conversation, card: dict[str, Any], summary: str) -> dict[str, Any]:
    """A message activity holding one Adaptive Card, addressed as botbuilder addresses a proactive one."""
    return {
        "type": "message",
        "channelId": target.channel_id,
        "serviceUrl": target.service_url,
        "from": {"id": target.bot_id},
        "conversation": {
            "id": target.conversation_id,
            "conversationType": target.scope if target.scope != "team" else "channel",
            "tenantId": target.tenant_id,
        },
        "attachments": [{"contentType": ADAPTIVE_CARD, "content": card}],
        "summary": summary,
    }
