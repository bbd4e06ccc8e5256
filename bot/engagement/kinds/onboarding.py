"""Onboarding: tips on days 0, 3, 7 and 14 after install (the person's local calendar days)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from bot.engagement.kinds.base import CampaignBase, Columns, Facts, Match, Step, plural, sorted_days


class Onboarding(CampaignBase):
    """Tips on day 0, 3, 7 and 14 after install (local calendar days of the person)."""

    kind: Literal["onboarding"]
    days: tuple[Annotated[int, Field(ge=0, le=90)], ...] = (0, 3, 7, 14)
    catch_up_days: int = Field(default=2, ge=0, le=14)  # a tip missed (quiet hours, budget) may follow this late
    steps: dict[int, Step] = Field(default_factory=dict)
    cooldown_days: int = Field(default=0, ge=0, le=365)

    _sorted = field_validator("days")(sorted_days)

    @model_validator(mode="after")
    def _steps_are_days(self) -> Onboarding:
        stray = sorted(set(self.steps) - set(self.days))
        if stray:
            raise ValueError(f"steps for days {stray} that are not in days {list(self.days)}")
        if not self.days:
            raise ValueError("days must name at least one day")
        return self

    def match(self, facts: Facts, done: Collection[str], now: datetime) -> Match | None:
        """The latest tip day reached, while it is at most `catch_up_days` old."""
        day = facts.days_since_install
        if day is None:
            return None
        due = [d for d in self.days if d <= day]
        if not due or day - max(due) > self.catch_up_days:
            return None
        step_day = max(due)
        return Match(
            f"day-{step_day}", f"installed {plural(day, 'day')} ago: the day-{step_day} tip", {"day": step_day}
        )

    def prefilter(self, columns: Columns, now: datetime) -> str:
        days = " OR ".join(f"{columns.day} BETWEEN {d} AND {d + self.catch_up_days}" for d in self.days)
        return f"{columns.day} IS NOT NULL AND ({days})"

    def step_card(self, facts: Mapping[str, str | int]) -> Step | None:
        return self.steps.get(int(facts.get("day", -1)))
