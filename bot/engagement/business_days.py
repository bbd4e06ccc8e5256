"""Business-day arithmetic for escalation deadlines: Saturdays and Sundays do not count (UTC calendar)."""

from __future__ import annotations

from datetime import datetime, timedelta


def add_business_days(start: datetime, days: float) -> datetime:
    """`start` plus `days` business days (fractions allowed): a weekend pauses the clock.

    Friday 15:00 + 2 business days = Tuesday 15:00; Saturday 10:00 + 1 = Tuesday 00:00 (the clock starts on Monday).
    """
    if days < 0:
        raise ValueError("days must not be negative")
    moment = start
    remaining = timedelta(days=days)
    while True:
        if moment.weekday() >= 5:  # jump to the next Monday 00:00
            moment = (moment + timedelta(days=7 - moment.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
            continue
        end_of_day = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        available = end_of_day - moment
        if remaining <= available:
            return moment + remaining
        remaining -= available
        moment = end_of_day
