"""Account health over generated tenants: rising, flat and collapsing usage, detractor bursts, near renewals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.engagement.business_days import add_business_days
from bot.engagement.health import Answer, HealthPolicy, TenantSignals, assess
from bot.engagement.phrases import Phrase
from cards.i18n import Strings

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TODAY = NOW.date()
POLICY = HealthPolicy()
EN = Strings("en").phrase  # reasons are phrases, worded where they are read


def people(count: int, days_ago: range, every: int = 1) -> dict[str, frozenset[date]]:
    """`count` people, each active on every `every`-th day of `days_ago`."""
    return {f"p{i:03d}": frozenset(TODAY - timedelta(days=d) for d in days_ago[::every]) for i in range(count)}


def tenant(active: dict[str, frozenset[date]], installed: int = 20, **fields: object) -> TenantSignals:
    return TenantSignals(tenant_id="t1", active_days=active, installed=installed, **fields)  # type: ignore[arg-type]


def merge(*groups: dict[str, frozenset[date]]) -> dict[str, frozenset[date]]:
    merged: dict[str, frozenset[date]] = {}
    for n, group in enumerate(groups):
        for person, days in group.items():
            merged[f"{n}-{person}"] = days
    return merged


def test_rising_flat_and_collapsing_usage() -> None:
    rising = assess(tenant(merge(people(10, range(0, 14)), people(5, range(14, 28), 2))), POLICY, NOW)
    flat = assess(tenant(people(12, range(0, 28), 2)), POLICY, NOW)
    collapsing = assess(tenant(merge(people(2, range(0, 14), 7), people(12, range(14, 28)))), POLICY, NOW)

    trend = {h: next(c for c in h.components if c.name == "usage_trend") for h in (rising, flat, collapsing)}
    assert trend[rising].value == 1.0
    assert trend[flat].value == 1.0 and EN(trend[flat].reason).startswith("usage +0 %")
    assert trend[collapsing].value == 0.0
    assert EN(trend[collapsing].reason) == "usage -98 % (person-days active: 4 in the last 14 days vs 168 before)"
    assert rising.score >= flat.score > collapsing.score  # both healthy ones reach the cap
    assert (rising.arrow, flat.arrow, collapsing.arrow) == ("↑", "→", "↓")
    assert collapsing.at_risk and not rising.at_risk and not flat.at_risk
    assert EN(collapsing.reasons[0]).startswith("usage -98 %")  # the component that costs most comes first


def test_contributions_add_up_and_missing_data_is_left_out_not_guessed() -> None:
    health = assess(tenant(people(10, range(0, 28), 3)), POLICY, NOW)
    assert health.score == pytest.approx(sum(c.contribution for c in health.components), abs=0.2)
    assert {c.name for c in health.components} == {"usage_trend", "activation", "detractors", "milestone"}
    assert health.left_out == (Phrase("left_out.nps", {"answers": 0, "needed": 10}), Phrase("left_out.renewal"))
    assert [EN(p) for p in health.left_out] == [
        "NPS: too few answers in 90 days (0 of 10 needed)",
        "renewal: no renewal date",
    ]
    # the weights present are rescaled to 100: usage 30 + activation 25 + detractors 10 + milestone 10 = 75
    usage = next(c for c in health.components if c.name == "usage_trend")
    assert usage.contribution == pytest.approx(100 * 30 / 75 * usage.value, abs=0.1)


def test_nps_counts_only_with_enough_answers_and_a_detractor_burst_costs() -> None:
    active = people(10, range(0, 28), 2)
    few = [Answer(2, NOW - timedelta(days=3))] * 9
    burst = [Answer(2, NOW - timedelta(days=d)) for d in range(4)] + [Answer(9, NOW - timedelta(days=5))] * 8
    with_few = assess(tenant(active, answers=few), POLICY, NOW)
    with_burst = assess(tenant(active, answers=burst), POLICY, NOW)
    assert "nps" not in {c.name for c in with_few.components}
    nps = next(c for c in with_burst.components if c.name == "nps")
    assert EN(nps.reason).startswith("NPS +33 (95 % interval") and "from 12 answers in 90 days" in EN(nps.reason)
    detractors = next(c for c in with_burst.components if c.name == "detractors")
    assert (detractors.value, EN(detractors.reason)) == (0.0, "detractor answers in 90 days: 4")
    old = [Answer(2, NOW - timedelta(days=91))] * 5
    assert (
        next(c for c in assess(tenant(active, answers=old), POLICY, NOW).components if c.name == "detractors").value
        == 1
    )


def test_activation_milestone_and_renewal_components() -> None:
    active = people(6, range(0, 14), 2)
    health = assess(
        tenant(
            active,
            installed=20,
            milestone_reached=frozenset({"p000", "p001", "p002"}),
            renewal_date=TODAY + timedelta(days=45),
        ),
        POLICY,
        NOW,
    )
    parts = {c.name: c for c in health.components}
    assert EN(parts["activation"].reason) == "6 of 20 installed people active in 30 days (30 %)"
    assert parts["activation"].value == pytest.approx(0.5)  # 30 % of the 60 % target
    assert EN(parts["milestone"].reason) == "3 of 6 active people reached the value milestone (50 %)"
    assert parts["milestone"].value == 1.0
    assert parts["renewal"].value == pytest.approx(0.5)


def test_the_arrow_compares_with_two_weeks_earlier() -> None:
    falling = merge(people(3, range(0, 14), 7), people(12, range(14, 42)))
    health = assess(tenant(falling), POLICY, NOW)
    assert health.previous is not None and health.previous > health.score
    assert health.arrow == "↓"
    steady = assess(tenant(people(12, range(0, 60), 2)), POLICY, NOW)
    assert steady.arrow == "→"
    new = assess(tenant(people(5, range(0, 10))), POLICY, NOW)
    assert new.previous is None and new.arrow == "→"  # nothing to compare with


def test_weights_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown health components"):
        HealthPolicy(weights={"usage": 1.0})
    with pytest.raises(ValueError, match="not all zero"):
        HealthPolicy(weights={"nps": 0.0})
    only_usage = HealthPolicy(weights={"usage_trend": 1.0})
    health = assess(tenant(people(4, range(0, 28))), only_usage, NOW)
    assert [c.name for c in health.components] == ["usage_trend"] and health.score == 100.0


@pytest.mark.parametrize(
    ("start", "days", "deadline"),
    [
        (datetime(2026, 11, 24, 10, tzinfo=UTC), 2, datetime(2026, 11, 26, 10, tzinfo=UTC)),  # Tue → Thu
        (datetime(2026, 11, 26, 10, tzinfo=UTC), 2, datetime(2026, 11, 30, 10, tzinfo=UTC)),  # Thu → Mon
        (datetime(2026, 11, 27, 15, tzinfo=UTC), 2, datetime(2026, 12, 1, 15, tzinfo=UTC)),  # Fri → Tue
        (datetime(2026, 11, 28, 10, tzinfo=UTC), 1, datetime(2026, 12, 1, 0, tzinfo=UTC)),  # Sat: counts from Monday
        (datetime(2026, 11, 24, 10, tzinfo=UTC), 0.5, datetime(2026, 11, 24, 22, tzinfo=UTC)),
    ],
)
def test_business_days_skip_weekends(start: datetime, days: float, deadline: datetime) -> None:
    assert add_business_days(start, days) == deadline
