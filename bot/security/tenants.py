"""Which Microsoft 365 tenants may talk to the bot.

A Bot Connector token proves the activity came through the Bot Framework for our app id, not which tenant sent it:
any tenant can sideload a manifest carrying our bot id. So every activity's tenant is checked against this list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class TenantPolicy:
    """`allow_all` for `*` (or dev mode with an empty list); otherwise an explicit set of tenant ids."""

    allowed: frozenset[str]
    allow_all: bool = False

    @classmethod
    def from_setting(cls, values: Iterable[str], *, dev_mode: bool) -> TenantPolicy:
        cleaned = frozenset(v.strip().lower() for v in values if v.strip())
        if "*" in cleaned:
            return cls(frozenset(), allow_all=True)
        return cls(cleaned, allow_all=dev_mode and not cleaned)

    def refusal(self, tenant_id: str | None) -> str | None:
        """None when the tenant may use the bot, else the reason it may not."""
        if self.allow_all:
            return None
        if not tenant_id:
            return "activity carries no tenant id"
        if tenant_id.strip().lower() not in self.allowed:
            return "tenant is not allowed to use this bot"
        return None
