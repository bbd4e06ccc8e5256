"""People's calendar days in their own time zone, in a form a database query can use.

A query cannot call zoneinfo, and SQLite knows no time zones at all. So for each zone Python works out, from the same
zoneinfo lookup `local_time` uses, the UTC offsets that applied over a span of time; a stored instant then becomes a
local day with integer arithmetic: (epoch seconds + offset) // 86400. Pure: the caller passes `now`.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime

from bot.engagement.asking import local_time, zone_info
from bot.engagement.usage import epoch_day

DAY_SECONDS = 86_400
FOREVER = 2**62  # beyond any stored instant, in epoch seconds, either way


@functools.lru_cache(maxsize=1024)
def offset_spans(zone: str | None, first_day: int, last_day: int) -> tuple[tuple[int, int, int], ...]:
    """(start, end, offset): the zone's UTC offset in seconds for instants in [start, end), in epoch seconds.

    The spans cover every instant. They are exact from `first_day` to `last_day` (epoch days): the offset is probed
    at every UTC midnight and a change is bisected to the second it took effect (no zone has changed its offset
    twice within one day). Before and after, the nearest known offset holds. A name that is not a zone is UTC, as
    for `local_time`.
    """
    found = zone_info(zone) if zone else None
    if found is None:
        return ((-FOREVER, FOREVER, 0),)

    def offset(second: int) -> int:
        shift = datetime.fromtimestamp(second, UTC).astimezone(found).utcoffset()
        return int(shift.total_seconds()) if shift is not None else 0

    spans: list[tuple[int, int, int]] = []
    start, probe = -FOREVER, first_day * DAY_SECONDS
    current = offset(probe)
    for day in range(first_day + 1, last_day + 2):
        following = day * DAY_SECONDS
        if offset(following) == current:
            continue
        before, after = following - DAY_SECONDS, following  # offset(before) == current != offset(after)
        while after - before > 1:
            middle = (before + after) // 2
            before, after = (middle, after) if offset(middle) == current else (before, middle)
        spans.append((start, after, current))
        start, current = after, offset(after)
    spans.append((start, FOREVER, current))
    return tuple(spans)


def local_day(moment: datetime, zone: str | None) -> int:
    """The epoch day of `moment` in `zone` (what the spans compute in SQL)."""
    return epoch_day(local_time(moment, zone).date())


def today_in(now: datetime, zone: str | None) -> date:
    return local_time(now, zone).date()
