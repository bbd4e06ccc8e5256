"""Net Promoter Score statistics.

Scores 0–6 are detractors, 7–8 passives, 9–10 promoters. NPS = 100·(p − d) with p and d the shares of promoters and
detractors among *answers* (a skipped or unanswered survey is not an answer). Its variance is
Var = 100²·((p + d) − (p − d)²)/n. The 95 % interval uses the adjusted-Wald form (add ¾ promoter, ¾ detractor and
3 answers in all: n' = n + 3, p' = (P + ¾)/n', d' = (D + ¾)/n'), which keeps sensible coverage at small n and at
the extremes. Two periods are compared with z = (NPS₁' − NPS₂') / √(Var₁' + Var₂') on the adjusted figures, with a
two-sided normal p-value. No score is shown below a minimum number of answers ("too few answers").
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

Z_95 = 1.959963984540054
DEFAULT_MIN_ANSWERS = 10


class Category(StrEnum):
    DETRACTOR = "detractor"
    PASSIVE = "passive"
    PROMOTER = "promoter"


def validate_score(score: object) -> int:
    """The score as an int 0–10, or ValueError. Booleans and floats like 9.5 are refused; "9" and 9.0 are not."""
    if isinstance(score, bool):
        raise ValueError("score must be a whole number from 0 to 10")
    if isinstance(score, str):
        text = score.strip()
        if not text.isdigit():
            raise ValueError("score must be a whole number from 0 to 10")
        score = int(text)
    if isinstance(score, float):
        if not score.is_integer():
            raise ValueError("score must be a whole number from 0 to 10")
        score = int(score)
    if not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError("score must be a whole number from 0 to 10")
    return score


def category(score: int) -> Category:
    score = validate_score(score)
    if score <= 6:
        return Category.DETRACTOR
    if score <= 8:
        return Category.PASSIVE
    return Category.PROMOTER


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class NpsSummary:
    """Every figure a report shows. `score`/`interval` are None below the minimum number of answers."""

    answers: int
    asks: int | None
    promoters: int
    passives: int
    detractors: int
    histogram: tuple[int, ...]  # count per score 0..10
    min_answers: int
    raw_score: float | None  # 100·(p − d), None when there are no answers
    adjusted_score: float  # 100·(p' − d')
    adjusted_variance: float

    @property
    def enough(self) -> bool:
        return self.answers >= self.min_answers

    @property
    def score(self) -> float | None:
        return self.raw_score if self.enough else None

    @property
    def interval(self) -> Interval | None:
        if not self.enough:
            return None
        half = Z_95 * math.sqrt(self.adjusted_variance)
        return Interval(max(-100.0, self.adjusted_score - half), min(100.0, self.adjusted_score + half))

    @property
    def verdict(self) -> str:
        return f"NPS {self.raw_score:+.0f}" if self.enough and self.raw_score is not None else "too few answers"

    def share(self, which: Category) -> float | None:
        if self.answers == 0:
            return None
        count = {Category.PROMOTER: self.promoters, Category.PASSIVE: self.passives}.get(which, self.detractors)
        return count / self.answers

    @property
    def response_rate(self) -> float | None:
        """Answers ÷ asks; None when nothing was asked (or asks are unknown)."""
        if not self.asks:
            return None
        return min(1.0, self.answers / self.asks)


def summarize(scores: Iterable[int], *, asks: int | None = None, min_answers: int = DEFAULT_MIN_ANSWERS) -> NpsSummary:
    histogram = [0] * 11
    for score in scores:
        histogram[validate_score(score)] += 1
    n = sum(histogram)
    promoters = histogram[9] + histogram[10]
    passives = histogram[7] + histogram[8]
    detractors = n - promoters - passives
    raw = 100.0 * (promoters - detractors) / n if n else None
    n_adj = n + 3
    p_adj = (promoters + 0.75) / n_adj
    d_adj = (detractors + 0.75) / n_adj
    variance = 100.0**2 * ((p_adj + d_adj) - (p_adj - d_adj) ** 2) / n_adj
    return NpsSummary(
        answers=n,
        asks=asks,
        promoters=promoters,
        passives=passives,
        detractors=detractors,
        histogram=tuple(histogram),
        min_answers=min_answers,
        raw_score=raw,
        adjusted_score=100.0 * (p_adj - d_adj),
        adjusted_variance=variance,
    )


@dataclass(frozen=True)
class Change:
    """Period-over-period change: `current` minus `previous`, with its z statistic and two-sided p-value."""

    delta: float | None
    z: float | None
    p_value: float | None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < 0.05


def compare(current: NpsSummary, previous: NpsSummary) -> Change:
    """No verdict unless both periods pass the minimum-answers gate."""
    if not (current.enough and previous.enough) or current.raw_score is None or previous.raw_score is None:
        return Change(None, None, None)
    spread = math.sqrt(current.adjusted_variance + previous.adjusted_variance)
    z = (current.adjusted_score - previous.adjusted_score) / spread
    p_value = math.erfc(abs(z) / math.sqrt(2))
    return Change(current.raw_score - previous.raw_score, z, p_value)
