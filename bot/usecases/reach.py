"""A stored person's reachability, by the one rule in bot.engagement.reach (used by campaigns and surveys alike)."""

from __future__ import annotations

from bot.engagement.reach import ChatOpening, ReachFacts, reachable
from bot.usecases.ports import Person


def can_reach(user: Person, *, has_chat: bool, anchored: bool, opening: ChatOpening) -> bool:
    """Whether a proactive message may be queued for `user`; `anchored`: the bot has a live conversation in their
    tenant (only matters without a chat)."""
    facts = ReachFacts(
        has_chat=has_chat,
        installed=user.installed_at is not None,
        uninstalled=user.uninstalled_at is not None,
        refused=user.unreachable_at is not None,
        tenant_anchored=anchored,
    )
    return reachable(facts, opening)
