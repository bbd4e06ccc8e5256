"""Adoption: active recently, but the value milestone event not reached within N days of install."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.engagement.kinds.base import CampaignBase, Columns, Facts, Match, Window, event_name, plural


class Adoption(CampaignBase):
    """Active recently, but the value milestone event not reached within N days of install."""

    kind: Literal["adoption"]
    milestone: str
    within_days: int = Field(default=7, ge=1, le=365)
    min_active_days: int = Field(default=3, ge=1, le=90)
    window_days: int = Field(default=14, ge=1, le=90)
    max_sends: int = Field(default=2, ge=1, le=10)
    cooldown_days: int = Field(default=14, ge=0, le=365)

    _event = field_validator("milestone")(event_name)

    @model_validator(mode="after")
    def _window_fits(self) -> Adoption:
        if self.min_active_days > self.window_days:
            raise ValueError("min_active_days cannot exceed window_days")
        return self

    @cached_property
    def window(self) -> Window:
        return Window(0, self.window_days)

    def windows(self) -> tuple[Window, ...]:
        return (self.window,)

    def events(self) -> tuple[str, ...]:
        return (self.milestone,)

    def card_event(self) -> str | None:
        return self.milestone

    def match(self, facts: Facts, done: Collection[str], now: datetime) -> Match | None:
        """Up to `max_sends` nudges (one step each), while the person is active but has not reached the milestone."""
        day, sent = facts.days_since_install, len(done)
        if day is None or day < self.within_days or sent >= self.max_sends:
            return None
        active = facts.active(self.window)
        if (facts.total(self.milestone) or 0) > 0 or active < self.min_active_days:
            return None
        reason = (
            f"active {active} of last {self.window_days} days, milestone `{self.milestone}` "
            f"not reached {plural(day, 'day')} after install"
        )
        return Match(f"nudge-{sent + 1}", reason, {"feature": self.milestone, "days": day})

    def prefilter(self, columns: Columns, now: datetime) -> str:
        return (
            f"{columns.day} >= {self.within_days} AND coalesce({columns.total(self.milestone)}, 0) <= 0 "
            f"AND {columns.active(self.window)} >= {self.min_active_days}"
        )
