"""The uplift interval (hand-computed) and the campaigns file: packaged defaults load, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.campaigns_file import load_campaigns, parse_campaigns
from bot.config import ConfigError
from bot.engagement.kinds import Adoption, Onboarding
from bot.engagement.uplift import Group, uplift


def test_agresti_caffo_interval_by_hand() -> None:
    """40/100 came back when messaged, 25/100 when held out.

    p̃₁ = 41/102 = 0.40196, p̃₂ = 26/102 = 0.25490; se = √(0.40196·0.59804/102 + 0.25490·0.74510/102) = 0.064952;
    0.14706 ± 1.96·0.064952 → (1.98, 27.44) points; the observed difference is 15.0 points.
    """
    result = uplift(Group(100, 40), Group(100, 25))
    assert result.difference == pytest.approx(15.0)
    assert result.interval is not None
    assert result.interval[0] == pytest.approx(1.9755, abs=1e-3)
    assert result.interval[1] == pytest.approx(27.4363, abs=1e-3)
    assert result.verdict == "more people came back than without it"


def test_no_verdict_on_small_groups_and_honest_no_difference() -> None:
    small = uplift(Group(9, 9), Group(50, 0))
    assert small.interval is None and small.difference is None
    assert small.verdict == "too few (each group needs 10)"
    same = uplift(Group(200, 60), Group(20, 6))
    assert same.interval is not None and same.interval[0] < 0 < same.interval[1]
    assert same.verdict == "no measurable difference yet"
    worse = uplift(Group(100, 10), Group(100, 40))
    assert worse.verdict == "fewer people came back than without it"


def test_the_packaged_campaigns_load_with_every_kind() -> None:
    loaded = load_campaigns()
    assert {c.kind for c in loaded.active} == {
        "onboarding",
        "adoption",
        "milestone",
        "legacy",
        "reengagement",
        "renewal",
    }
    adoption = next(c for c in loaded.active if isinstance(c, Adoption))
    assert adoption.milestone == "report_created" and adoption.holdout_percent == 10
    assert loaded.feature_label("report_created", "de") == "Einen Bericht erstellen"
    assert loaded.feature_label("unknown_event", "de") == "unknown_event"


def test_a_file_is_read_from_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text(
        "campaigns:\n  - {id: tips, kind: onboarding, days: [14, 0], steps: {0: {text: 'Pin it', link: 'https://x.example'}}}\n"
    )
    loaded = load_campaigns(str(path))
    onboarding = loaded.active[0]
    assert isinstance(onboarding, Onboarding)
    assert onboarding.days == (0, 14)  # sorted
    assert onboarding.steps[0].text is not None and onboarding.steps[0].text.get("fr") == "Pin it"  # English fallback


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "campaigns: [{id: a, kind: adoption, milestone: x, within_days: 0}]",
            "campaigns[0] (id a).within_days: Input should be greater than or equal to 1",
        ),
        (
            "campaigns: [{id: a, kind: nudge}]",
            "campaigns[0] (id a): Input tag 'nudge' found using 'kind' does not match",
        ),
        (
            "campaigns: [{id: a, kind: onboarding, dayz: [1]}]",
            "campaigns[0] (id a).dayz: Extra inputs are not permitted",
        ),
        ("campaigns: [{id: a, kind: renewal}, {id: a, kind: renewal}]", "campaign id 'a' is used twice"),
        ("campaigns: [{id: Big Id, kind: renewal}]", "campaigns[0] (id Big Id).id: String should match pattern"),
        ("campaigns: [{id: a, kind: adoption, milestone: 'report created'}]", "is not an event name"),
        ("campaigns: [{id: a, kind: milestone}]", "needs counts (with event) or anniversary_days"),
        (
            "campaigns: [{id: a, kind: onboarding, days: [0, 3], steps: {5: {text: hi}}}]",
            "steps for days [5] that are not in days [0, 3]",
        ),
        ("campaigns: [{id: a, kind: legacy, link: 'http://plain.example'}]", "links must start with https://"),
        (
            "campaigns: [{id: a, kind: adoption, milestone: x, holdout_percent: 80}]",
            "holdout_percent: Input should be less than or equal to 50",
        ),
        (
            "campaigns: [{id: a, kind: legacy, min_previous_active_days: 20}]",
            "min_previous_active_days cannot exceed window_days",
        ),
        ("campaigns: [oops", "line 1: not valid YAML"),
        ("- just a list", "expected a mapping with a 'campaigns' list"),
    ],
)
def test_mistakes_are_named_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_campaigns(text, "my.yaml")
    assert str(raised.value).startswith("campaigns file my.yaml")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_campaigns(str(tmp_path / "missing.yaml"))
