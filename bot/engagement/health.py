"""Account health: a 0–100 score per tenant, built from components a CSM can read, each with its contribution.

Components (each scored 0…1, then weighted; weights come from the campaigns file):
- **usage trend** — person-days of activity in the last 14 days ÷ the 14 before: ≤ 0.5 scores 0, ≥ 1.0 scores 1;
- **seat activation** — people active in the last 30 days ÷ people with the app installed (``activation_target`` = 1);
- **NPS** — (NPS + 100) / 200 over the last 90 days, only with enough answers (#3's minimum); with too few answers
  the component is *left out* and the other weights are rescaled: no verdict on too few answers;
- **detractors** — detractor answers in the last 90 days: 0 scores 1, ``detractor_limit`` or more score 0;
- **milestone attainment** — share of recently active people who reached the value event (``milestone_target`` = 1);
- **renewal** — days to the renewal date ÷ 90 (left out when no date is known).
score = 100 · Σ wᵢ·sᵢ / Σ wᵢ over the components present; a component's contribution is 100 · wᵢ·sᵢ / Σ wᵢ, so the
contributions add up to the score. The trend arrow compares with the same score computed as of 14 days earlier.
Pure: the caller passes the tenant's signals and `as_of`. Reasons are phrases (a card-string key and values), worded in
each reader's language where they are shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from bot.engagement.nps import NpsSummary, category, summarize
from bot.engagement.phrases import Phrase

WINDOW = 14


@dataclass(frozen=True)
class HealthPolicy:
    weights: Mapping[str, float] = field(
        default_factory=lambda: {
            "usage_trend": 30.0,
            "activation": 25.0,
            "nps": 20.0,
            "detractors": 10.0,
            "milestone": 10.0,
            "renewal": 5.0,
        }
    )
    at_risk_below: float = 50.0
    activation_target: float = 0.6  # 60 % of installed people active in 30 days is full marks
    milestone_target: float = 0.5
    detractor_limit: int = 3
    arrow_points: float = 5.0  # a change smaller than this is "→"
    min_answers: int = 10

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown health components: {sorted(unknown)}")
        if any(w < 0 for w in self.weights.values()) or not any(self.weights.values()):
            raise ValueError("health weights must be non-negative and not all zero")


COMPONENTS = ("usage_trend", "activation", "nps", "detractors", "milestone", "renewal")


@dataclass(frozen=True)
class Answer:
    score: int
    answered_at: datetime


@dataclass(frozen=True)
class TenantSignals:
    """What health reads about one tenant (rollups, answers, installs, renewal)."""

    tenant_id: str
    active_days: Mapping[str, frozenset[date]]  # person → days with any activity (at least the last 60 days)
    installed: int  # people with the app installed now
    answers: Sequence[Answer] = ()
    milestone_reached: frozenset[str] = frozenset()  # people who ever did the value event
    renewal_date: date | None = None
    name: str | None = None


@dataclass(frozen=True)
class Component:
    name: str
    value: float  # 0…1
    contribution: float  # points of the 0–100 score
    reason: Phrase


@dataclass(frozen=True)
class Health:
    tenant_id: str
    score: float
    previous: float | None  # the score 14 days earlier
    components: tuple[Component, ...]
    left_out: tuple[Phrase, ...]  # components without enough data, with why
    at_risk: bool
    nps: NpsSummary
    arrow: str  # ↑ ↓ → against `previous`
    name: str | None = None

    @property
    def reasons(self) -> list[Phrase]:
        """The components that cost the most points first: what a CSM should look at."""
        ranked = sorted(self.components, key=lambda c: c.value)
        return [c.reason for c in ranked if c.value < 0.75]


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def _person_days(signals: TenantSignals, first: date, last: date) -> int:
    return sum(1 for days in signals.active_days.values() for d in days if first <= d <= last)


def _active_people(signals: TenantSignals, first: date, last: date) -> set[str]:
    return {p for p, days in signals.active_days.items() if any(first <= d <= last for d in days)}


def assess(signals: TenantSignals, policy: HealthPolicy, as_of: datetime) -> Health:
    """The health as of `as_of`, with the score 14 days earlier for the trend arrow."""
    current = _score(signals, policy, as_of)
    earlier = _score(signals, policy, as_of - timedelta(days=WINDOW))
    components, left_out, nps = current
    score = sum(c.contribution for c in components)
    previous = sum(c.contribution for c in earlier[0]) if earlier[0] and _had_usage(signals, as_of) else None
    arrow = "→"
    if previous is not None and score - previous >= policy.arrow_points:
        arrow = "↑"
    elif previous is not None and previous - score >= policy.arrow_points:
        arrow = "↓"
    return Health(
        signals.tenant_id,
        round(score, 1),
        None if previous is None else round(previous, 1),
        tuple(components),
        tuple(left_out),
        score < policy.at_risk_below,
        nps,
        arrow,
        signals.name,
    )


def _had_usage(signals: TenantSignals, as_of: datetime) -> bool:
    """An arrow needs a past to compare with: some activity before the last window."""
    cutoff = as_of.date() - timedelta(days=WINDOW)
    return any(d <= cutoff for days in signals.active_days.values() for d in days)


def _score(
    signals: TenantSignals, policy: HealthPolicy, as_of: datetime
) -> tuple[list[Component], list[Phrase], NpsSummary]:
    today = as_of.date()
    raw: list[tuple[str, float, Phrase]] = []
    left_out: list[Phrase] = []

    recent = _person_days(signals, today - timedelta(days=WINDOW - 1), today)
    before = _person_days(signals, today - timedelta(days=2 * WINDOW - 1), today - timedelta(days=WINDOW))
    if before == 0:
        value = 1.0 if recent else 0.0
        text = Phrase("reason.usage_new" if recent else "reason.usage_none")
    else:
        ratio = recent / before
        value = _clamp((ratio - 0.5) / 0.5)
        text = Phrase("reason.usage_change", {"change": round(100 * (ratio - 1)), "recent": recent, "before": before})
    raw.append(("usage_trend", value, text))

    active30 = _active_people(signals, today - timedelta(days=29), today)
    if signals.installed:
        share = len(active30) / signals.installed
        counts = {"active": len(active30), "installed": signals.installed, "share": round(100 * share)}
        raw.append(("activation", _clamp(share / policy.activation_target), Phrase("reason.activation", counts)))
    else:
        left_out.append(Phrase("left_out.activation"))

    window = [a for a in signals.answers if as_of - timedelta(days=90) < a.answered_at <= as_of]
    nps = summarize([a.score for a in window], min_answers=policy.min_answers)
    if nps.enough and nps.raw_score is not None:
        interval = nps.interval
        if interval:
            values = {"score": nps.raw_score, "low": interval.low, "high": interval.high, "answers": nps.answers}
            text = Phrase("reason.nps_interval", values)
        else:
            text = Phrase("reason.nps", {"score": nps.raw_score, "answers": nps.answers})
        raw.append(("nps", (nps.raw_score + 100) / 200, text))
    else:
        left_out.append(Phrase("left_out.nps", {"answers": nps.answers, "needed": policy.min_answers}))

    detractors = sum(1 for a in window if category(a.score).value == "detractor")
    value = _clamp(1 - detractors / policy.detractor_limit)
    raw.append(("detractors", value, Phrase("reason.detractors", {"count": detractors})))

    active14 = _active_people(signals, today - timedelta(days=WINDOW - 1), today)
    if active14:
        reached = len(active14 & signals.milestone_reached)
        share = reached / len(active14)
        counts = {"reached": reached, "active": len(active14), "share": round(100 * share)}
        raw.append(("milestone", _clamp(share / policy.milestone_target), Phrase("reason.milestone", counts)))
    else:
        left_out.append(Phrase("left_out.milestone"))

    if signals.renewal_date is not None:
        left = (signals.renewal_date - today).days
        text = Phrase("reason.renewal", {"days": left, "date": signals.renewal_date.isoformat()})
        raw.append(("renewal", _clamp(left / 90), text))
    else:
        left_out.append(Phrase("left_out.renewal"))

    weights = {name: policy.weights.get(name, 0.0) for name, _, _ in raw}
    total = sum(weights.values()) or 1.0
    components = [
        Component(name, round(value, 3), round(100 * weights[name] * value / total, 1), text)
        for name, value, text in raw
        if weights[name] > 0
    ]
    return components, left_out, nps
