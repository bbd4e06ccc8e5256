"""Did a campaign change behaviour? Treated versus holdout return rates, with a 95 % interval on the difference.

The interval is Agresti and Caffo's (2000) adjusted Wald interval for a difference of two proportions: add one
success and one failure to each group, then use the Wald formula,
    p̃ᵢ = (xᵢ + 1) / (nᵢ + 2),  d = p̃₁ − p̃₂ ± z·√(p̃₁(1 − p̃₁)/(n₁ + 2) + p̃₂(1 − p̃₂)/(n₂ + 2)),
which keeps close to 95 % coverage even for small groups and rates near 0 or 1. The point estimate shown is the
plain difference of the observed rates. Below a minimum group size there is no verdict, only "too few".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Group:
    people: int  # touches whose observation window has ended
    returned: int  # of them, active again within the window

    @property
    def rate(self) -> float | None:
        return self.returned / self.people if self.people else None


@dataclass(frozen=True)
class Uplift:
    treated: Group
    holdout: Group
    difference: float | None  # percentage points, treated minus holdout
    interval: tuple[float, float] | None  # 95 %, percentage points
    min_group: int

    @property
    def verdict(self) -> str:
        if self.interval is None:
            return f"too few (each group needs {self.min_group})"
        low, high = self.interval
        if low > 0:
            return "more people came back than without it"
        if high < 0:
            return "fewer people came back than without it"
        return "no measurable difference yet"


def uplift(treated: Group, holdout: Group, min_group: int = 10) -> Uplift:
    if min(treated.people, holdout.people) < min_group:
        return Uplift(treated, holdout, None, None, min_group)
    if not (0 <= treated.returned <= treated.people and 0 <= holdout.returned <= holdout.people):
        raise ValueError("returned must be between 0 and the group size")
    p1 = (treated.returned + 1) / (treated.people + 2)
    p2 = (holdout.returned + 1) / (holdout.people + 2)
    half = Z_95 * math.sqrt(p1 * (1 - p1) / (treated.people + 2) + p2 * (1 - p2) / (holdout.people + 2))
    centre = p1 - p2
    observed = treated.returned / treated.people - holdout.returned / holdout.people
    return Uplift(treated, holdout, 100 * observed, (100 * (centre - half), 100 * (centre + half)), min_group)
