"""Milestones: celebrate the Nth use of a key feature, or a usage anniversary, while it is fresh."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from bot.engagement.kinds.base import CampaignBase, Columns, Facts, Match, event_name, sorted_days


class Milestone(CampaignBase):
    """Celebrate the Nth use of a key feature, or a usage anniversary; the card offers "share with your team"."""

    reads_moments: ClassVar[bool] = True
    shareable: ClassVar[bool] = True

    kind: Literal["milestone"]
    event: str | None = None
    counts: tuple[Annotated[int, Field(ge=1)], ...] = ()
    anniversary_days: tuple[Annotated[int, Field(ge=1)], ...] = ()
    recent_days: int = Field(default=7, ge=1, le=90)  # celebrate only while it is fresh
    cooldown_days: int = Field(default=3, ge=0, le=365)

    _sorted = field_validator("counts", "anniversary_days")(sorted_days)

    @model_validator(mode="after")
    def _has_a_goal(self) -> Milestone:
        if not self.counts and not self.anniversary_days:
            raise ValueError("a milestone campaign needs counts (with event) or anniversary_days")
        if self.counts and self.event is None:
            raise ValueError("counts need the event they count")
        if self.event is not None:
            event_name(self.event)
        return self

    @classmethod
    def card_strings(cls, step: str) -> str:
        return "nurture.milestone.anniversary" if step.startswith("anniversary") else "nurture.milestone.count"

    def events(self) -> tuple[str, ...]:
        return (self.event,) if self.event else ()

    def card_event(self) -> str | None:
        return self.event

    def match(self, facts: Facts, done: Collection[str], now: datetime) -> Match | None:
        """The highest count reached (the event used within `recent_days`), else an anniversary of first use
        (active within `recent_days`)."""
        fresh = timedelta(days=self.recent_days)
        if self.event and self.counts:
            total, last_used = facts.total(self.event), facts.last_used(self.event)
            if total is not None and last_used is not None and now - last_used <= fresh:
                reached = [n for n in self.counts if total >= n]
                if reached:
                    top = max(reached)
                    if f"count-{top}" not in done:
                        reason = f"`{self.event}` used {total} times (the {top} milestone)"
                        return Match(f"count-{top}", reason, {"feature": self.event, "count": top})
        since = facts.since
        if since is None:
            return None
        age = (now - since).days
        for anniversary in self.anniversary_days:
            if anniversary <= age < anniversary + self.recent_days and (facts.last_seen_at or since) >= now - fresh:
                reason = f"first active {age} days ago (the {anniversary}-day anniversary), active this week"
                return Match(f"anniversary-{anniversary}", reason, {"days": anniversary})
        return None

    def prefilter(self, columns: Columns, now: datetime) -> str:
        fresh = columns.value(now - timedelta(days=self.recent_days))
        parts = []
        if self.event and self.counts:
            total, last = columns.total(self.event), columns.last_used(self.event)
            parts.append(f"({total} >= {min(self.counts)} AND {last} >= {fresh})")
        if self.anniversary_days:
            ages = " OR ".join(
                f"({columns.since} <= {columns.value(now - timedelta(days=a))} "
                f"AND {columns.since} > {columns.value(now - timedelta(days=a + self.recent_days))})"
                for a in self.anniversary_days
            )
            parts.append(f"(({ages}) AND coalesce({columns.last_seen}, {columns.since}) >= {fresh})")
        return " OR ".join(parts)
