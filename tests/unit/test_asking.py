"""When to ask: every rule with its reason, in the person's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from bot.engagement.asking import AskPolicy, AskState, budget_refusal, decide, in_sample
from bot.engagement.budget import AttentionBudget

TUESDAY_10_UTC = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
POLICY = AskPolicy()


def state(**fields: object) -> AskState:
    values: dict[str, object] = {"user_key": "t1:u1", "reachable": True, "time_zone": "Europe/Berlin"}
    values.update(fields)
    return AskState(**values)  # type: ignore[arg-type]


def test_never_asked_is_asked() -> None:
    decision = decide(state(), POLICY, TUESDAY_10_UTC)
    assert decision.ask and decision.reason == "never asked"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"reachable": False}, "not reachable"),
        ({"opted_out": True}, "opted out of all messages"),
        ({"declined_nps": True}, "asked not to get NPS surveys"),
    ],
)
def test_consent_and_reachability_even_when_forced(fields: dict[str, object], reason: str) -> None:
    for force in (False, True):
        decision = decide(state(**fields), POLICY, TUESDAY_10_UTC, force=force)
        assert not decision.ask and reason in decision.reason


def test_answered_recently() -> None:
    decision = decide(state(last_answer_at=TUESDAY_10_UTC - timedelta(days=12)), POLICY, TUESDAY_10_UTC)
    assert not decision.ask and decision.reason == "answered 12 days ago (re-survey every 90 days)"
    assert decision.not_before == TUESDAY_10_UTC + timedelta(days=78)


def test_interval_counts_from_last_ask_when_unanswered() -> None:
    decision = decide(
        state(last_answer_at=TUESDAY_10_UTC - timedelta(days=200), last_ask_at=TUESDAY_10_UTC - timedelta(days=30)),
        POLICY,
        TUESDAY_10_UTC,
    )
    assert not decision.ask and decision.reason.startswith("asked 30 days ago")


def test_due_again_after_interval() -> None:
    decision = decide(state(last_answer_at=TUESDAY_10_UTC - timedelta(days=91)), POLICY, TUESDAY_10_UTC)
    assert decision.ask and decision.reason == "last answer 91 days ago"


def test_snoozed() -> None:
    until = TUESDAY_10_UTC + timedelta(days=3)
    decision = decide(state(snoozed_until=until), POLICY, TUESDAY_10_UTC)
    assert not decision.ask and decision.reason == "snoozed until 2026-11-27" and decision.not_before == until
    assert decide(state(snoozed_until=TUESDAY_10_UTC - timedelta(hours=1)), POLICY, TUESDAY_10_UTC).ask


def test_force_skips_timing_rules() -> None:
    decision = decide(state(last_answer_at=TUESDAY_10_UTC - timedelta(days=1)), POLICY, TUESDAY_10_UTC, force=True)
    assert decision.ask and decision.reason == "forced by an operator"


def test_sampling_is_deterministic_and_near_the_percentage() -> None:
    chosen = [in_sample(f"t:{i}", 25) for i in range(4000)]
    assert chosen == [in_sample(f"t:{i}", 25) for i in range(4000)]
    assert 0.22 < sum(chosen) / len(chosen) < 0.28
    assert all(in_sample(f"t:{i}", 100) for i in range(100))
    assert not any(in_sample(f"t:{i}", 0) for i in range(100))


def test_outside_sample_reason() -> None:
    policy = AskPolicy(sample_percent=0)
    assert decide(state(), policy, TUESDAY_10_UTC).reason == "outside the 0 % sample"


def test_attention_budget_short_window() -> None:
    sends = [TUESDAY_10_UTC - timedelta(days=1)]
    decision = decide(state(recent_sends=sends), POLICY, TUESDAY_10_UTC)
    assert not decision.ask and decision.reason == "attention budget: 1 message(s) in the last 3 days (limit 1)"
    assert decision.not_before == sends[0] + timedelta(days=3)


def test_attention_budget_long_window() -> None:
    sends = [TUESDAY_10_UTC - timedelta(days=d) for d in (4, 9, 15, 20)]
    decision = budget_refusal(AttentionBudget(), sends, TUESDAY_10_UTC)
    assert decision is not None and "4 message(s) in the last 30 days (limit 4)" in decision.reason
    assert decision.not_before == TUESDAY_10_UTC - timedelta(days=20) + timedelta(days=30)
    assert budget_refusal(AttentionBudget(), sends[1:], TUESDAY_10_UTC) is None


@pytest.mark.parametrize(
    ("moment", "zone", "asks", "reason"),
    [
        (
            datetime(2026, 11, 24, 17, 30, tzinfo=UTC),
            "Europe/Berlin",
            False,
            "quiet hours in Europe/Berlin (local time 18:30)",
        ),
        (
            datetime(2026, 11, 24, 7, 30, tzinfo=UTC),
            "Europe/Berlin",
            False,
            "quiet hours in Europe/Berlin (local time 08:30)",
        ),
        (datetime(2026, 11, 24, 8, 0, tzinfo=UTC), "Europe/Berlin", True, None),  # 09:00 in Berlin
        (datetime(2026, 11, 24, 1, 0, tzinfo=UTC), "Asia/Tokyo", True, None),  # 10:00 in Tokyo
        (
            datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
            "America/New_York",
            False,
            "quiet hours in America/New_York (local time 20:00)",
        ),
        (datetime(2026, 11, 28, 12, 0, tzinfo=UTC), "Europe/Berlin", False, "weekend in Europe/Berlin"),
        (datetime(2026, 11, 28, 12, 0, tzinfo=UTC), "Not/AZone", False, "weekend in Not/AZone"),
    ],
)
def test_quiet_hours_and_weekends_in_local_time(moment: datetime, zone: str, asks: bool, reason: str | None) -> None:
    decision = decide(state(time_zone=zone), POLICY, moment)
    assert decision.ask is asks
    if reason:
        assert decision.reason == reason


def test_quiet_hours_resume_at_local_morning() -> None:
    decision = decide(state(), POLICY, datetime(2026, 11, 24, 7, 30, tzinfo=UTC))
    assert decision.not_before == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


def test_weekend_resumes_monday_morning() -> None:
    decision = decide(state(), POLICY, datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    assert decision.not_before is not None
    assert decision.not_before.weekday() == 0 and decision.not_before.astimezone(UTC).hour == 8  # 09:00 Berlin


def test_quiet_window_not_crossing_midnight() -> None:
    policy = AskPolicy(quiet_start=time(12, 0), quiet_end=time(14, 0), skip_weekends=False)
    assert not decide(state(time_zone="UTC"), policy, datetime(2026, 11, 24, 13, 0, tzinfo=UTC)).ask
    assert decide(state(time_zone="UTC"), policy, datetime(2026, 11, 24, 15, 0, tzinfo=UTC)).ask


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        AskPolicy(sample_percent=101)
    with pytest.raises(ValueError):
        AttentionBudget(short_window_days=40)
