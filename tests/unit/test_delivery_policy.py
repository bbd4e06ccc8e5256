"""Microsoft's status-code table for bot APIs, as Nurture applies it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.engagement.delivery import (
    AttemptResult,
    RetryPolicy,
    Status,
    judge,
    lateness_allowed,
    parse_retry_after,
    window_wait,
)

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def verdict(code: int | None, attempt: int = 1, **fields: object):  # type: ignore[no-untyped-def]
    return judge(AttemptResult(code, **fields), attempt, NOW, POLICY, random.Random(7))  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [200, 201])
def test_success(code: int) -> None:
    assert verdict(code).status is Status.SENT


@pytest.mark.parametrize(
    ("code", "error"), [(403, "ConversationBlockedByUser"), (403, "BotDisabledByAdmin"), (404, "ConversationNotFound")]
)
def test_never_retried_and_unreachable(code: int, error: str) -> None:
    result = verdict(code, error_code=error)
    assert result.status is Status.FAILED and result.unreachable and error in result.reason
    assert result.retry_at is None


@pytest.mark.parametrize("code", [412, 502, 503, 504])
def test_retried_with_jittered_backoff(code: int) -> None:
    result = verdict(code, attempt=3)
    assert result.status is Status.QUEUED and result.retry_at is not None
    assert NOW <= result.retry_at <= NOW + timedelta(seconds=8)  # base 2 s · 2² with full jitter
    assert result.pause_tenant_until is None


def test_429_obeys_retry_after_and_pauses_the_tenant() -> None:
    result = verdict(429, retry_after="17")
    assert result.status is Status.QUEUED and result.retry_at == NOW + timedelta(seconds=17)
    assert result.pause_tenant_until == NOW + timedelta(seconds=17)


def test_429_without_retry_after_backs_off() -> None:
    result = verdict(429, attempt=2)
    assert result.retry_at is not None and NOW <= result.retry_at <= NOW + timedelta(seconds=4)
    assert result.pause_tenant_until == result.retry_at


def test_retries_are_bounded() -> None:
    result = verdict(503, attempt=POLICY.max_attempts)
    assert result.status is Status.FAILED and "gave up after 6 attempts" in result.reason


@pytest.mark.parametrize("code", [413, 400, 401, 418])
def test_other_codes_are_final(code: int) -> None:
    result = verdict(code)
    assert result.status is Status.FAILED and not result.unreachable and result.retry_at is None


@pytest.mark.parametrize("code", [500, None])
def test_500_and_timeouts_are_unknown_not_resent(code: int | None) -> None:
    result = verdict(code)
    assert result.status is Status.UNKNOWN and "not resent" in result.reason


def test_unknown_can_be_configured_to_retry() -> None:
    result = judge(AttemptResult(500), 1, NOW, RetryPolicy(resend_unknown=True), random.Random(1))
    assert result.status is Status.QUEUED


def test_connection_refused_before_sending_is_retried() -> None:
    assert verdict(None, request_sent=False).status is Status.QUEUED
    no_token = verdict(None, request_sent=False, error_code="token: KeyError")
    assert no_token.status is Status.QUEUED and no_token.reason == "not sent (token: KeyError)"


def test_backoff_is_capped() -> None:
    rng = random.Random(3)
    assert all(POLICY.backoff(20, rng) <= timedelta(seconds=300) for _ in range(100))


def test_retry_after_forms() -> None:
    assert parse_retry_after("5", NOW) == timedelta(seconds=5)
    assert parse_retry_after("Tue, 24 Nov 2026 10:00:30 GMT", NOW) == timedelta(seconds=30)
    assert parse_retry_after("soon", NOW) is None and parse_retry_after(None, NOW) is None


def test_window_wait_is_until_the_oldest_send_that_matters_leaves_its_window() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    limits = ((7, 1.0), (8, 2.0))
    six = [now - timedelta(milliseconds=100 * i) for i in range(6)]
    assert window_wait(six, now, limits) == 0.0  # a seventh fits
    seven = [*six, now - timedelta(milliseconds=900)]
    assert window_wait(seven, now, limits) == pytest.approx(0.1)  # the oldest leaves the 1 s window in 0.1 s
    eight = [*seven, now - timedelta(seconds=1.5)]  # outside 1 s, inside 2 s: the 2 s window waits longer
    assert window_wait(list(reversed(eight)), now, limits) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("rate", "allowed"),
    [(45.0, (49 / 45 - 1) / 2), (30.0, (49 / 30 - 1) / 2), (48.5, (49 / 48.5 - 1) / 2), (49.0, 0.005), (50.0, 0.005)],
)
def test_how_late_a_request_may_leave_after_its_moment(rate: float, allowed: float) -> None:
    """Late by at most L: at most rate·(1 + L) + 1 requests in any second, with half the room left for the network."""
    assert lateness_allowed(rate) == pytest.approx(allowed)
    worst = rate * (1 + 2 * lateness_allowed(rate)) + 1  # even if the way to Teams adds as much again
    assert worst <= 50 or lateness_allowed(rate) == 0.005
