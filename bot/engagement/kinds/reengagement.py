"""Re-engagement: not seen in the app for N days, a "what's new" card once per absence."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Literal

from pydantic import Field

from bot.engagement.kinds.base import CampaignBase, Columns, Facts, Match


class Reengagement(CampaignBase):
    """Not seen for N days: a "what's new" card, once per absence."""

    kind: Literal["reengagement"]
    inactive_days: int = Field(default=30, ge=1, le=365)
    cooldown_days: int = Field(default=30, ge=0, le=365)

    def match(self, facts: Facts, done: Collection[str], now: datetime) -> Match | None:
        """Idle for `inactive_days` local days since last seen (never seen: since install); the absence names
        the step, so each absence gets one card."""
        last_day = facts.last_day
        if last_day is None:
            return None  # never seen in the app nor installed: nothing to come back to
        idle = (facts.today - last_day).days
        if idle < self.inactive_days:
            return None
        what = f"last seen {last_day.isoformat()}" if facts.seen else f"never active since install {last_day}"
        return Match(f"absent-since-{last_day.isoformat()}", f"not seen for {idle} days ({what})", {"days": idle})

    def prefilter(self, columns: Columns, now: datetime) -> str:
        return f"{columns.idle} >= {self.inactive_days}"
