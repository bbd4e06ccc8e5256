"""The attention budget: how many proactive messages one person may get, whatever their kind."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AttentionBudget:
    """Defaults from the product spec: at most 1 proactive message per 3 days and 4 per 30 days per user."""

    max_per_short_window: int = 1
    short_window_days: int = 3
    max_per_long_window: int = 4
    long_window_days: int = 30

    def __post_init__(self) -> None:
        if min(self.max_per_short_window, self.short_window_days, self.max_per_long_window, self.long_window_days) < 1:
            raise ValueError("attention budget values must be positive")
        if self.short_window_days > self.long_window_days:
            raise ValueError("the short window must not be longer than the long window")
