"""What delivery needs from the outside world: a way to send cards, and optionally ways to open chats.

bot/teams/proactive.py implements them with the Bot Connector, bot/graph_install.py with Microsoft Graph; tests use a
fake Teams connector behind the same classes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.engagement.delivery import AttemptResult
from bot.usecases.ports import Conversation


@dataclass(frozen=True)
class SendOutcome:
    result: AttemptResult
    activity_id: str | None = None


class MessageSender(Protocol):
    async def attempt(self, target: Conversation, card: dict[str, Any], summary: str) -> SendOutcome:
        """Send once; never raises for connector answers, only reports them."""

    async def attempt_update(
        self, target: Conversation, activity_id: str, card: dict[str, Any], summary: str
    ) -> SendOutcome:
        """Replace a card sent before, once."""

    async def attempt_delete(self, target: Conversation, activity_id: str) -> SendOutcome:
        """Take a card back, once."""


@dataclass(frozen=True)
class OpenOutcome:
    """The answer to opening a person's chat: the conversation id, or what Teams / Graph said instead."""

    result: AttemptResult
    conversation_id: str | None = None


class ChatOpener(Protocol):
    async def attempt_open(self, anchor: Conversation, aad_object_id: str) -> OpenOutcome:
        """Bot Framework create_conversation for one person, through the tenant's service URL; once."""


class AppInstaller(Protocol):
    async def attempt_install(
        self, tenant_id: str, aad_object_id: str, pace: Callable[[], Awaitable[None]]
    ) -> OpenOutcome:
        """Install the app for the person (Microsoft Graph) and return the chat it opened; once. `pace` is awaited
        right before the install request (the tenant's install rate)."""
