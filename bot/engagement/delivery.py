"""What to do after a send attempt, following Microsoft's status-code table for bot APIs.

Retry 412, 429 (honouring Retry-After), 502, 503 and 504 with exponential backoff and full jitter, a bounded number
of times. Never retry 403 (blocked, bot disabled, not in roster) or 404 (conversation gone): the person is unreachable
until they install again or write to the bot. 413 is final. A 500, or a timeout after the request left, means the
message may or may not have been delivered: a send is not idempotent, so the row becomes `unknown` unless configured
otherwise.
Any status Microsoft does not list is not retried.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

RETRYABLE = frozenset({412, 429, 502, 503, 504})
TEAMS_TENANT_LIMIT = 50  # requests per second per app per tenant (Microsoft's current page; 30 in older revisions)


def send_window(limit: int, rate: float) -> float:
    """The window (seconds) a request counts for after its answer (SendLog), for an average of `rate` a second.

    Teams counts a tenant's requests per second. With SendLog's rule (a request counts from when it leaves until
    `limit / rate` seconds after its answer, at most `limit` counting at once) no second at Teams holds more than
    `limit`, whatever the delays, as long as the window is at least a second, i.e. rate ≤ limit: if `limit + 1`
    requests reached Teams within one second [a, a + 1), the last of them left before a + 1, and every other one had
    left before it and was answered at a or later, so still counted when it left — which the log forbids.
    A leaky bucket (aiolimiter) cannot give that: with capacity C it lets C + rate·T through in any T seconds, so
    near Teams' 50 a second it can hold at most one request, and time a sender lost (descheduled, busy) is lost."""
    if rate <= 0 or rate > limit:
        raise ValueError(f"the rate ({rate:g}/s) must be above 0 and at most the limit ({limit}/s)")
    return limit / rate


class SendLog:
    """What one worker sent to one tenant, which says when the next request may leave: at most `limit` requests
    counted in any `window` seconds, 1/limit seconds after the moment planned for the one before.

    A request counts from the moment it leaves until `window` seconds after its answer came back: Teams counts it
    somewhere in between, so however long the way there and back takes (a busy or descheduled sender, a slow network,
    queues at the far side), no second at Teams holds more than `limit`. Requests in flight count in full.

    The spacing keeps a tenant's requests smooth instead of in bursts of `limit` (a burst from every tenant at once
    queues at the far side). It counts from planned moments, not from departures: timers fire a little late (the loop
    was busy, epoll rounds to milliseconds), and spacing from late departures would add that to every request.
    Times are the caller's clock, in seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.spacing = 1.0 / limit
        self.in_flight = 0
        self._answers: list[float] = []  # when answers came back, in order; those older than `window` are dropped
        self._planned = float("-inf")

    def next_free(self, now: float) -> float:
        """The earliest moment, not before `now`, at which one more request keeps every window within the limit;
        infinity while `limit` requests are in flight (the next answer frees room)."""
        self._forget(now)
        free = max(now, self._planned + self.spacing)
        over = self.in_flight + len(self._answers) - self.limit + 1  # answers that must leave the window first
        if over <= 0:
            return free
        if over > len(self._answers):
            return math.inf
        return max(free, self._answers[over - 1] + self.window)

    def record(self, at: float, planned: float | None = None) -> None:
        """A request left at `at`, for the moment `planned` (`next_free` said so; `at` when not given)."""
        self.in_flight += 1
        self._planned = at if planned is None else min(planned, at)

    def answered(self, at: float) -> None:
        """A request's answer came back (or the sender gave up waiting for it) at `at`."""
        self.in_flight = max(0, self.in_flight - 1)
        bisect.insort(self._answers, at)

    def quiet_after(self) -> float:
        """When everything answered has left every window: a sender taking over from this one may start then."""
        return self._answers[-1] + self.window if self._answers else 0.0

    def _forget(self, now: float) -> None:
        old = bisect.bisect_right(self._answers, now - self.window)
        if old:
            del self._answers[:old]


UNREACHABLE = frozenset({403, 404})


class Status(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class AttemptResult:
    """What the connector said: a status code (None when no answer came back) and, for 429, Retry-After."""

    status_code: int | None
    error_code: str | None = None
    retry_after: str | None = None
    request_sent: bool = True  # False when the connection failed before the request left
    refused: bool = False  # refused on our side (e.g. a service URL not on the allow-list): never retried


@dataclass(frozen=True)
class Verdict:
    status: Status
    retry_at: datetime | None = None
    unreachable: bool = False  # mark the person unreachable: no more sends until they come back
    pause_tenant_until: datetime | None = None  # a 429 slows every worker for the whole tenant
    reason: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay_seconds: float = 2.0
    max_delay_seconds: float = 300.0
    resend_unknown: bool = False  # treat 500/timeouts as retryable (risks duplicates); off by default

    def backoff(self, attempt: int, rng: random.Random) -> timedelta:
        """Full jitter: uniform in [0, min(cap, base · 2^(attempt−1))]."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(0, attempt - 1))
        return timedelta(seconds=rng.uniform(0, ceiling))


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(timedelta(0), moment - now) if moment.tzinfo else None


def judge(result: AttemptResult, attempt: int, now: datetime, policy: RetryPolicy, rng: random.Random) -> Verdict:
    """The outbox row's next state after attempt number `attempt` (1-based)."""
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return Verdict(Status.SENT, reason=str(code))
    if result.refused:
        return Verdict(Status.FAILED, reason=result.error_code or "refused before sending")
    if code in UNREACHABLE:
        return Verdict(Status.FAILED, unreachable=True, reason=f"{code} {result.error_code or ''}".strip())
    exhausted = attempt >= policy.max_attempts
    if code in RETRYABLE or (code is None and not result.request_sent):
        if code:
            reason = f"{code} {result.error_code or ''}".strip()
        else:  # what failed before the request left: the connection, or (error_code "token: …") the bot's token
            reason = f"not sent ({result.error_code or 'connection failed'})"
        if exhausted:
            return Verdict(Status.FAILED, reason=f"{reason}; gave up after {attempt} attempts")
        delay = policy.backoff(attempt, rng)
        pause = None
        if code == 429:
            told = parse_retry_after(result.retry_after, now)
            delay = told if told is not None else delay
            pause = now + delay
        return Verdict(Status.QUEUED, retry_at=now + delay, pause_tenant_until=pause, reason=reason)
    if code == 500 or code is None:
        reason = "500 from the connector" if code == 500 else "no answer after the request was sent"
        if policy.resend_unknown and not exhausted:
            return Verdict(Status.QUEUED, retry_at=now + policy.backoff(attempt, rng), reason=reason)
        return Verdict(Status.UNKNOWN, reason=f"{reason}: delivery unknown, not resent")
    return Verdict(Status.FAILED, reason=f"{code} {result.error_code or ''} is not retried".replace("  ", " "))


def judge_opening(
    result: AttemptResult, attempt: int, now: datetime, policy: RetryPolicy, rng: random.Random
) -> Verdict:
    """Like `judge`, for opening a person's chat (create_conversation, Graph install): nothing reaches the person, and
    Teams answers a repeated open with the same chat (Graph with 409), so an open without an answer is retried."""
    return judge(result, attempt, now, replace(policy, resend_unknown=True), rng)


def window_wait(sent: Sequence[datetime], now: datetime, limits: Sequence[tuple[int, float]]) -> float:
    """Seconds until one more send fits every "at most `count` in `seconds`" window over the earlier sends `sent`;
    0 when it fits now."""
    ordered = sorted(sent)
    wait = 0.0
    for count, seconds in limits:
        window = [t for t in ordered if t > now - timedelta(seconds=seconds)]
        if len(window) >= count:
            oldest_that_matters = window[len(window) - count]
            wait = max(wait, (oldest_that_matters + timedelta(seconds=seconds) - now).total_seconds())
    return wait
