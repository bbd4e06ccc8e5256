"""Low usage ("legacy"): active days fell from one window to the next, or key features were never used."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.engagement.kinds.base import CampaignBase, Columns, Facts, Match, Window, event_name, plural


class Legacy(CampaignBase):
    """Low usage: active days fell (last window vs the one before), or key features were never used."""

    kind: Literal["legacy"]
    window_days: int = Field(default=14, ge=3, le=90)
    min_drop_percent: float = Field(default=50.0, gt=0, le=100)
    min_previous_active_days: int = Field(default=4, ge=1, le=90)  # the noise guard: a drop from 2 to 1 is not a drop
    key_features: tuple[str, ...] = ()
    unused_after_days: int = Field(default=30, ge=1, le=365)
    cooldown_days: int = Field(default=30, ge=0, le=365)

    @field_validator("key_features")
    @classmethod
    def _names(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(event_name(v) for v in values)

    @model_validator(mode="after")
    def _guard_fits(self) -> Legacy:
        if self.min_previous_active_days > self.window_days:
            raise ValueError("min_previous_active_days cannot exceed window_days")
        return self

    @cached_property
    def recent(self) -> Window:
        return Window(0, self.window_days)

    @cached_property
    def previous(self) -> Window:
        return Window(self.window_days, self.window_days)

    @classmethod
    def card_strings(cls, step: str) -> str:
        return "nurture.legacy.unused" if step.startswith("unused") else "nurture.legacy.drop"

    def windows(self) -> tuple[Window, ...]:
        return (self.recent, self.previous)

    def events(self) -> tuple[str, ...]:
        return self.key_features

    def card_event(self) -> str | None:
        return self.key_features[0] if self.key_features else None

    def match(self, facts: Facts, done: Collection[str], now: datetime) -> Match | None:
        """A drop of at least `min_drop_percent` in active days, else key features never used once settled in.
        One step per local day: a drop that lasts is met again after the cooldown."""
        window, today = self.window_days, facts.today
        recent, previous = facts.active(self.recent), facts.active(self.previous)
        if previous >= self.min_previous_active_days and recent <= previous * (1 - self.min_drop_percent / 100):
            fall = round(100 * (previous - recent) / previous)
            reason = f"active {recent} of last {window} days vs {previous} of the {window} before ({fall} % fewer)"
            return Match(f"drop-{today.isoformat()}", reason, {"recent": recent, "previous": previous, "days": window})
        day = facts.days_since_install
        if self.key_features and day is not None and day >= self.unused_after_days and recent > 0:
            unused = [name for name in self.key_features if facts.total(name) is None]
            if unused:
                names = ", ".join(f"`{name}`" for name in unused)
                reason = f"active, but never used {names} in {plural(day, 'day')} since install"
                return Match(f"unused-{today.isoformat()}", reason, {"feature": unused[0], "days": day})
        return None

    def prefilter(self, columns: Columns, now: datetime) -> str:
        recent, previous = columns.active(self.recent), columns.active(self.previous)
        factor = columns.value(1 - self.min_drop_percent / 100)
        drop = f"({previous} >= {self.min_previous_active_days} AND {recent} <= {previous} * {factor})"
        if not self.key_features:
            return drop
        present = " AND ".join(f"{columns.total(name)} IS NOT NULL" for name in self.key_features)
        return f"{drop} OR ({columns.day} >= {self.unused_after_days} AND {recent} > 0 AND NOT ({present}))"
