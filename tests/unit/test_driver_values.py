"""Values handed straight to a driver (storage.sql.driver_value) are the ones SQLAlchemy would store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from bot.engagement.usage import BotSignal, bot_signal
from storage.answers import FirstAnswer, _parameters
from storage.models import UtcDateTime
from storage.sql import driver_value

_SQLITE = sqlite.dialect()
_SQLITE_TEXT = UtcDateTime().dialect_impl(_SQLITE).bind_processor(_SQLITE)  # the text SQLAlchemy writes


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 4, 22, 19, 38, 99128, tzinfo=UTC),
        datetime(2026, 12, 4, 22, 19, 38, tzinfo=UTC),  # no fraction: still six digits
        datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),  # to UTC, next day
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),  # a year of three digits, padded to four
    ],
)
def test_an_instant_for_sqlite_is_the_text_sqlalchemy_stores(moment: datetime) -> None:
    assert _SQLITE_TEXT is not None
    assert driver_value(moment, postgres=False) == _SQLITE_TEXT(moment)


def test_an_instant_for_postgresql_is_the_same_instant_in_utc() -> None:
    moment = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    value = driver_value(moment, postgres=True)
    assert value == moment and value.utcoffset() == timedelta(0)


def test_a_day_for_sqlite_is_iso_text_and_other_values_pass_as_they_are() -> None:
    assert driver_value(date(2026, 12, 4), postgres=False) == "2026-12-04"
    assert driver_value(date(2026, 12, 4), postgres=True) == date(2026, 12, 4)
    assert driver_value(7, postgres=False) == 7 and driver_value(None, postgres=True) is None


def test_a_first_answer_hands_over_its_own_instant_and_its_signals_each_as_text_for_sqlite() -> None:
    now = datetime(2026, 12, 4, 22, 0, 0, 1, tzinfo=UTC)
    earlier = now - timedelta(hours=3)
    for signal_at in (now, earlier):  # the answer's own instant, or another one
        signal = bot_signal("T", "A", BotSignal.CARD_ANSWER, signal_at)
        answer = FirstAnswer("i", "t", "a", 3, None, True, signal, now)
        values = _parameters(answer, sqlite=True)
        assert values["now"] == "2026-12-04 22:00:00.000001"
        assert values["signal_at"] == _SQLITE_TEXT(signal_at)
        assert values["signal_day"] == signal_at.date().isoformat()
        assert _parameters(answer)["signal_at"] == signal_at  # PostgreSQL: the instant itself
