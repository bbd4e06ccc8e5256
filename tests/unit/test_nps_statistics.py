"""NPS statistics against hand-computed examples and properties (DESIGN.md §4)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.engagement.nps import Category, category, compare, summarize, validate_score


def test_categories() -> None:
    assert [category(s) for s in range(11)] == [Category.DETRACTOR] * 7 + [Category.PASSIVE] * 2 + [
        Category.PROMOTER
    ] * 2


@pytest.mark.parametrize("bad", [11, -1, "nine", 9.5, True, None, "", [9]])
def test_invalid_scores(bad: object) -> None:
    with pytest.raises(ValueError):
        validate_score(bad)


@pytest.mark.parametrize(("value", "expected"), [("9", 9), (" 10 ", 10), (0, 0), (7.0, 7)])
def test_valid_score_forms(value: object, expected: int) -> None:
    assert validate_score(value) == expected


def test_no_answers() -> None:
    summary = summarize([], asks=12)
    assert summary.answers == 0 and summary.raw_score is None and summary.score is None
    assert summary.interval is None and summary.verdict == "too few answers"
    assert summary.response_rate == 0.0 and summary.share(Category.PROMOTER) is None


def test_hand_computed_mixed_sample() -> None:
    # 6 promoters, 2 passives, 4 detractors: p = .5, d = 1/3, NPS = 16.67
    scores = [10, 10, 9, 9, 9, 10, 7, 8, 0, 3, 5, 6]
    summary = summarize(scores, asks=20)
    assert (summary.promoters, summary.passives, summary.detractors) == (6, 2, 4)
    assert summary.score == pytest.approx(100 * (6 - 4) / 12)
    assert summary.histogram == (1, 0, 0, 1, 0, 1, 1, 1, 1, 3, 3)
    assert summary.response_rate == pytest.approx(12 / 20)
    # adjusted Wald: n' = 15, p' = 6.75/15 = .45, d' = 4.75/15 = .31667
    p, d = 6.75 / 15, 4.75 / 15
    assert summary.adjusted_score == pytest.approx(100 * (p - d))
    variance = 100**2 * ((p + d) - (p - d) ** 2) / 15
    assert summary.adjusted_variance == pytest.approx(variance)
    interval = summary.interval
    assert interval is not None
    assert interval.low == pytest.approx(100 * (p - d) - 1.959964 * math.sqrt(variance), abs=1e-4)
    assert interval.high == pytest.approx(100 * (p - d) + 1.959964 * math.sqrt(variance), abs=1e-4)
    # by hand: NPS' = 13.33, Var' = 1e4·(.76667 − .01778)/15 = 499.26, sd = 22.34, ±43.79
    assert (round(interval.low, 1), round(interval.high, 1)) == (-30.5, 57.1)


def test_all_promoters() -> None:
    summary = summarize([10] * 10)
    assert summary.score == 100.0 and summary.verdict == "NPS +100"
    interval = summary.interval
    assert interval is not None
    # n' = 13, p' = 10.75/13, d' = .75/13 → NPS' = 76.92, sd = 15.01 → low 47.50, high clipped to 100
    assert interval.low == pytest.approx(47.50, abs=0.01) and interval.high == 100.0


def test_minimum_answers_gate() -> None:
    assert summarize([10] * 9).score is None and summarize([10] * 9).verdict == "too few answers"
    assert summarize([10] * 10).score == 100.0
    assert summarize([10] * 3, min_answers=3).score == 100.0


def test_significant_change() -> None:
    now = summarize([10] * 40 + [8] * 10 + [3] * 10)  # NPS +50
    before = summarize([10] * 20 + [8] * 10 + [3] * 30)  # NPS −16.7
    change = compare(now, before)
    assert change.delta == pytest.approx(50 - (-100 / 6))
    assert change.z is not None and change.z > 1.96
    assert change.p_value is not None and change.p_value < 0.001 and change.significant


def test_non_significant_change() -> None:
    now = summarize([10] * 6 + [8] * 2 + [3] * 4)
    before = summarize([10] * 5 + [8] * 3 + [3] * 4)
    change = compare(now, before)
    assert change.p_value is not None and change.p_value > 0.5 and not change.significant


def test_no_verdict_on_too_few_answers() -> None:
    change = compare(summarize([10] * 5), summarize([0] * 50))
    assert change.delta is None and change.p_value is None and not change.significant


scores = st.lists(st.integers(min_value=0, max_value=10), max_size=400)


@given(scores)
def test_properties(values: list[int]) -> None:
    summary = summarize(values, min_answers=1)
    if not values:
        assert summary.score is None
        return
    assert summary.score is not None and -100 <= summary.score <= 100
    shares = [summary.share(c) for c in Category]
    assert math.isclose(sum(s for s in shares if s is not None), 1.0)
    interval = summary.interval
    assert interval is not None and -100 <= interval.low <= interval.high <= 100


@given(st.lists(st.integers(min_value=0, max_value=10), min_size=10, max_size=400))
def test_interval_contains_the_estimate_from_the_minimum_sample_up(values: list[int]) -> None:
    summary = summarize(values)
    interval = summary.interval
    assert interval is not None and summary.score is not None
    assert interval.low <= summary.score <= interval.high
