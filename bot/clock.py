"""The real clock. Domain code never reads it: use cases get `now` passed in, so tests choose the time."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
