"""Offsets by span (what the targeting query turns instants into local days with) agree with zoneinfo."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.engagement.asking import local_time
from bot.engagement.local_days import DAY_SECONDS, FOREVER, offset_spans
from bot.engagement.usage import epoch_day

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata", "UTC"]
FIRST, LAST = epoch_day(datetime(2024, 1, 1).date()), epoch_day(datetime(2027, 1, 1).date())


def _local_day(spans: tuple[tuple[int, int, int], ...], second: int) -> int:
    (shift,) = [s for low, high, s in spans if low <= second < high]
    return (second + shift) // DAY_SECONDS


@pytest.mark.parametrize("zone", ZONES)
def test_spans_give_the_local_day_zoneinfo_gives(zone: str) -> None:
    spans = offset_spans(zone, FIRST, LAST)
    assert spans[0][0] == -FOREVER and spans[-1][1] == FOREVER
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # no gaps, no overlaps
    rng = random.Random(zone)
    moments = [
        datetime(2024, 1, 2, tzinfo=UTC) + timedelta(seconds=rng.randrange(3 * 365 * DAY_SECONDS)) for _ in range(3000)
    ]
    # and every change itself, a second before and at it
    moments += [datetime.fromtimestamp(low + d, UTC) for low, _, _ in spans[1:] for d in (-1, 0)]
    for moment in moments:
        second = int(moment.timestamp())
        assert _local_day(spans, second) == epoch_day(local_time(moment, zone).date()), (zone, moment)


def test_a_zone_that_kept_its_offset_is_one_span_and_a_name_that_is_no_zone_is_utc() -> None:
    assert offset_spans("Asia/Kolkata", FIRST, LAST) == ((-FOREVER, FOREVER, 19800),)
    assert offset_spans("Not/AZone", FIRST, LAST) == ((-FOREVER, FOREVER, 0),)
    assert len(offset_spans("Europe/Berlin", FIRST, LAST)) == 7  # two changes a year, 2024 to 2026
