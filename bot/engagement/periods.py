"""Calendar periods for reports: ISO week, month, quarter."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class Period(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


def period_key(moment: datetime, period: Period) -> str:
    """A label that sorts in time order: 2026-W48, 2026-11, 2026-Q4."""
    if period is Period.WEEK:
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.MONTH:
        return f"{moment.year}-{moment.month:02d}"
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"
