"""When to ask someone for an NPS answer, with the reason in words.

Rules, checked in order: the person can be reached and has not opted out; "don't ask again"; an "ask me later"
snooze; the re-survey interval counted from their last answer *or* last ask; deterministic sampling; the attention
budget shared with every other proactive message; quiet hours and weekends in their own time zone.
The clock is passed in: nothing here reads the time.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.engagement.budget import AttentionBudget


@dataclass(frozen=True)
class AskPolicy:
    resurvey_days: int = 90
    sample_percent: float = 100.0
    snooze_days: int = 7
    quiet_start: time = time(18, 0)  # no asks from 18:00 …
    quiet_end: time = time(9, 0)  # … to 09:00 local time
    skip_weekends: bool = True
    budget: AttentionBudget = field(default_factory=AttentionBudget)

    def __post_init__(self) -> None:
        if not 0 <= self.sample_percent <= 100:
            raise ValueError("sample_percent must be between 0 and 100")
        if self.resurvey_days < 1 or self.snooze_days < 1:
            raise ValueError("resurvey_days and snooze_days must be at least 1")


@dataclass(frozen=True)
class AskState:
    """What is known about one person, as of `now`."""

    user_key: str  # stable pseudonymous id (tenant + AAD object id) for sampling
    reachable: bool  # installed, not uninstalled, a conversation reference exists
    opted_out: bool = False  # typed "stop": no proactive messages at all
    declined_nps: bool = False  # clicked "don't ask again"
    snoozed_until: datetime | None = None
    last_answer_at: datetime | None = None
    last_ask_at: datetime | None = None
    recent_sends: Sequence[datetime] = ()  # every proactive message of any kind
    time_zone: str | None = None


@dataclass(frozen=True)
class Decision:
    ask: bool
    reason: str
    not_before: datetime | None = None  # when asking could next be possible, if known


def in_sample(user_key: str, percent: float, salt: str = "nps") -> bool:
    """Deterministic: the same person is always in or out for the same percentage and salt."""
    if percent >= 100:
        return True
    digest = hashlib.sha256(f"{salt}:{user_key}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2**64 * 100
    return bucket < percent


def budget_refusal(budget: AttentionBudget, sends: Sequence[datetime], now: datetime) -> Decision | None:
    """None when one more proactive message fits the budget, else why not and when it would."""
    if not sends:
        return None
    for limit, days in (
        (budget.max_per_short_window, budget.short_window_days),
        (budget.max_per_long_window, budget.long_window_days),
    ):
        window = [s for s in sends if now - timedelta(days=days) < s <= now]
        if len(window) >= limit:
            oldest = sorted(window)[len(window) - limit]
            return Decision(
                False,
                f"attention budget: {len(window)} message(s) in the last {days} days (limit {limit})",
                oldest + timedelta(days=days),
            )
    return None


def local_time(now: datetime, zone: str | None) -> datetime:
    found = zone_info(zone) if zone else None
    return now.astimezone(found) if found is not None else now


@functools.lru_cache(maxsize=1024)
def zone_info(name: str) -> ZoneInfo | None:
    """The zone, or None for a name that is not one (looked up once per name: targeting asks per person)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@functools.lru_cache(maxsize=4096)
def quiet_refusal(policy: AskPolicy, now: datetime, zone: str | None) -> Decision | None:
    """None outside quiet hours and weekends in `zone` (else why, and when they end); remembered per zone and moment,
    since a tenant's run asks it for every person."""
    local = local_time(now, zone)
    where = zone or "UTC"
    if policy.skip_weekends and local.weekday() >= 5:
        days_to_monday = 7 - local.weekday()
        monday = (local + timedelta(days=days_to_monday)).replace(
            hour=policy.quiet_end.hour, minute=policy.quiet_end.minute, second=0, microsecond=0
        )
        return Decision(False, f"weekend in {where}", monday)
    clock = local.time()
    quiet = (
        clock >= policy.quiet_start or clock < policy.quiet_end
        if policy.quiet_start > policy.quiet_end
        else policy.quiet_start <= clock < policy.quiet_end
    )
    if quiet:
        resume = local.replace(hour=policy.quiet_end.hour, minute=policy.quiet_end.minute, second=0, microsecond=0)
        if resume <= local:
            resume += timedelta(days=1)
        return Decision(False, f"quiet hours in {where} (local time {clock:%H:%M})", resume)
    return None


def _ago(now: datetime, then: datetime) -> str:
    days = (now - then).days
    return "today" if days == 0 else f"{days} day{'s' if days != 1 else ''} ago"


def decide(state: AskState, policy: AskPolicy, now: datetime, *, force: bool = False) -> Decision:
    """Whether to ask this person now. `force` skips the timing rules but never consent or reachability."""
    if not state.reachable:
        return Decision(False, "not reachable (not installed or no conversation)")
    if state.opted_out:
        return Decision(False, "opted out of all messages")
    if state.declined_nps:
        return Decision(False, "asked not to get NPS surveys")
    if force:
        return Decision(True, "forced by an operator")
    if state.snoozed_until and state.snoozed_until > now:
        return Decision(False, f"snoozed until {state.snoozed_until:%Y-%m-%d}", state.snoozed_until)
    interval = timedelta(days=policy.resurvey_days)
    latest = max((t for t in (state.last_answer_at, state.last_ask_at) if t), default=None)
    if latest and now - latest < interval:
        what = "answered" if latest == state.last_answer_at else "asked"
        return Decision(
            False, f"{what} {_ago(now, latest)} (re-survey every {policy.resurvey_days} days)", latest + interval
        )
    if not in_sample(state.user_key, policy.sample_percent):
        return Decision(False, f"outside the {policy.sample_percent:g} % sample")
    refusal = budget_refusal(policy.budget, state.recent_sends, now) or quiet_refusal(policy, now, state.time_zone)
    if refusal:
        return refusal
    if latest:
        return Decision(True, f"last {'answer' if latest == state.last_answer_at else 'ask'} {_ago(now, latest)}")
    return Decision(True, "never asked")
