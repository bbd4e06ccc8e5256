"""Who Nurture can reach on its own initiative, and how a message waits for a personal chat that does not exist yet.

A person with a live personal chat with the bot is reached there. A person without one can still be reached when the
bot is installed somewhere in their tenant: the delivery worker opens the chat first (Bot Framework
create_conversation, which works for members of a team or chat the bot is in), and, where proactive install through
Microsoft Graph is switched on, installs the app for them when Teams refuses (403/404) and uses the chat that the
installation opens. Until then the queued message names a *pending chat* instead of a conversation id.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

PENDING_CHAT_PREFIX = "pending-chat:"


class ChatOpening(StrEnum):
    """`NURTURE_OPEN_CHATS`: how far Nurture goes to reach someone without a personal chat."""

    OFF = "off"  # only people who have a personal chat with the bot
    CREATE = "create"  # also people the bot has met (teams, group chats): create_conversation
    INSTALL = "install"  # also every app user in an anchored tenant; Graph proactive install when Teams refuses


def pending_chat(user_id: int) -> str:
    """The conversation id a queued message carries until the person's chat is opened."""
    return f"{PENDING_CHAT_PREFIX}{user_id}"


def pending_user(conversation_id: str) -> int | None:
    """The user row id a pending-chat id stands for; None for a real Teams conversation id."""
    if not conversation_id.startswith(PENDING_CHAT_PREFIX):
        return None
    tail = conversation_id[len(PENDING_CHAT_PREFIX) :]
    return int(tail) if tail.isdigit() else None


class ReachFacts(NamedTuple):  # a tuple: targeting uses these as keys, a few hundred thousand times a run
    has_chat: bool  # a live personal conversation reference is stored
    installed: bool  # the app was installed in personal scope (or Nurture installed it / opened the chat)
    uninstalled: bool  # the person removed the app and has not put it back
    refused: bool  # Teams answered 403/404 to the last message: wait until they are back
    tenant_anchored: bool  # the bot has a live conversation in the tenant (a service URL to send through)


def reachable(facts: ReachFacts, opening: ChatOpening) -> bool:
    """Whether a proactive message may be queued for this person now."""
    if facts.refused or facts.uninstalled:
        return False  # someone who removed the app is not re-opened behind their back
    if facts.has_chat:
        return facts.installed
    return opening is not ChatOpening.OFF and facts.tenant_anchored
