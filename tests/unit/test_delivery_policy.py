"""Microsoft's status-code table for bot APIs, as Nurture applies it."""

from __future__ import annotations

import asyncio
import bisect
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.engagement.delivery import (
    AttemptResult,
    RetryPolicy,
    SendLog,
    Status,
    judge,
    parse_retry_after,
    send_window,
    window_wait,
)
from bot.usecases.delivery.worker import DeliveryConfig, DeliveryWorker

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


def _most_in_any_window(times: list[float], seconds: float) -> int:
    """The largest number of `times` inside any window [t, t + seconds) (a window starting at a time holds most)."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + seconds) - i for i, t in enumerate(ordered)), default=0)


@pytest.mark.parametrize("rate", [30.0, 45.0, 48.5, 49.0, 50.0])
def test_a_send_log_keeps_every_second_within_the_limit_however_late_requests_leave(rate: float) -> None:
    """Requests leave at the log's moment plus a random delay (a busy, descheduled sender) and are answered after a
    random round trip; Teams counts each somewhere in between. No second at Teams holds more than 50, whatever the
    delays, and the average is `rate` up to what the delays and round trips cost."""
    rng = random.Random(7)
    window = send_window(50, rate)
    log, now, arrivals = SendLog(50, window), 0.0, []
    for _ in range(5_000):
        planned = log.next_free(now)
        now = planned + (rng.expovariate(1 / 0.004) if rng.random() < 0.3 else 0.0)
        log.record(now, planned)
        answer = now + rng.expovariate(1 / 0.003)  # there and back: 3 ms on average, now and then much more
        log.answered(answer)
        arrivals.append(rng.uniform(now, answer))  # Teams counts it somewhere on the way
    assert _most_in_any_window(arrivals, 1.0) <= 50
    achieved = len(arrivals) / (arrivals[-1] - arrivals[0])
    assert 0.97 * rate <= achieved <= rate * 1.01


def _departures(count: int, held_up_at: int | None = None, rate: float = 45.0) -> list[float]:
    """A sender sending as early as its log allows, held up 0.3 s before request `held_up_at`."""
    log, now, times = SendLog(50, send_window(50, rate)), 0.0, []
    for i in range(count):
        planned = log.next_free(now)
        now = planned + (0.3 if i == held_up_at else 0.0)
        log.record(now, planned)
        log.answered(now)  # an instant answer: the window counts from the departure
        times.append(now)
    return times


def test_a_send_log_lets_a_held_up_sender_make_time_up() -> None:
    """Requests go 1/50 s apart until 50 are in the window of 50/45 s, then as the oldest leave it. Held up 0.3 s,
    a sender goes on 1/50 s apart where it would have waited for the window: it makes time up while the window has
    room, never falls further behind than the hold-up (no moment is given up, as a fixed schedule must), and never
    sends more than 50 in any second."""
    steady, held_up = _departures(400), _departures(400, held_up_at=36)
    assert steady[:3] == pytest.approx([0.0, 0.02, 0.04]) and steady[50] == pytest.approx(50 / 45)
    assert held_up[36] == pytest.approx(steady[36] + 0.3)
    assert held_up[37] == held_up[36]  # the next one was due long ago: it goes too
    assert [b - a for a, b in zip(held_up[37:85], held_up[38:86], strict=True)] == pytest.approx([0.02] * 48)
    assert held_up[85] - steady[85] < 0.2  # partly made up
    assert max(b - a for a, b in zip(steady, held_up, strict=True)) == pytest.approx(0.3)
    assert _most_in_any_window(held_up, 1.0) <= 50 and _most_in_any_window(steady, 1.0) <= 50
    assert len(steady) / steady[-1] == pytest.approx(45.0, rel=0.02)


def test_a_request_counts_until_a_window_after_its_answer() -> None:
    """Three a second at most: three requests in flight hold the log shut (however long they take); one answered at
    t counts until t + window, the ones still in flight count in full."""
    log = SendLog(3, send_window(3, 3.0))
    for t in (0.0, 0.4, 0.8):
        assert log.next_free(t) == pytest.approx(t)
        log.record(t)
    assert log.next_free(5.0) == math.inf  # no answers: Teams may still be counting them
    log.answered(5.0)
    assert log.next_free(5.0) == pytest.approx(6.0)  # one answered: it leaves the window at 5 + 1
    log.answered(5.5)
    log.answered(5.6)
    assert log.next_free(6.2) == pytest.approx(6.2)  # two left in the window, room for one
    log.record(6.2)
    assert log.next_free(6.2) == pytest.approx(6.2 + 1 / 3)  # 5.5 has left the window by then; the spacing is longer
    assert log.quiet_after() == pytest.approx(6.6)


def test_a_send_window_needs_a_rate_within_the_limit() -> None:
    assert send_window(30, 25.0) == pytest.approx(1.2)
    with pytest.raises(ValueError, match="at most the limit"):
        send_window(50, 51.0)
    with pytest.raises(ValueError):
        send_window(50, 0.0)


def test_a_worker_keeps_rows_in_hand_for_every_tenant_it_may_hold() -> None:
    """Enough rows for each tenant to stay at full rate while others wait for room, their claim or their outcome's
    write; an explicit number wins; a bound keeps a huge NURTURE_TENANTS_PER_WORKER from claiming the whole queue."""
    assert DeliveryConfig().in_hand == 4 * DeliveryConfig().rows_per_tenant == 128
    assert DeliveryConfig(tenants_per_worker=1).in_hand == 32
    assert DeliveryConfig(tenants_per_worker=1000).in_hand == 1024
    assert DeliveryConfig(concurrency=90).in_hand == 90


def test_a_worker_refuses_changes_its_parts_would_not_see() -> None:
    """The pacer, the outcome writer and the chat openings are built with the worker from its clock, sleep and id:
    changing one afterwards would reach the worker but not them, so it is refused."""
    worker = DeliveryWorker(lambda: None, None, "w1", lambda: datetime.now(UTC))  # type: ignore[arg-type,return-value]
    for name, value in (("sleep", asyncio.sleep), ("clock", datetime.now), ("worker_id", "w2")):
        with pytest.raises(AttributeError, match=name):
            setattr(worker, name, value)
    assert worker.worker_id == "w1" and worker.pacer.worker_id == "w1"
    worker.sender = None  # type: ignore[assignment]  # the worker's own: it may change
