"""Who should get which campaign message now, and why — in words and numbers.

Pure: the caller loads each person's rollups, touches and recent sends; nothing here reads a clock or a database.
For each person, campaigns are tried in priority order. A campaign first has to *match* (its audience rule), then
pass the *gates* every proactive message passes (reachable, not opted out, this kind not stopped, the campaign's
cooldown, the shared attention budget, quiet hours in the person's zone). The first campaign that passes wins the
run for that person; its message is sent, or — for the campaign's stable holdout share — recorded and not sent.
Holdout is decided after the gates, so treated and holdout people are selected by exactly the same rules.

Days are the person's local calendar days (their Teams time zone, else UTC): "day 14 after install" starts at
their midnight, not ours.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from bot.engagement.asking import AskPolicy, budget_refusal, in_sample, local_time, quiet_refusal
from bot.engagement.campaigns import (
    Adoption,
    Campaign,
    CampaignSet,
    Legacy,
    Milestone,
    Onboarding,
    Reengagement,
    Renewal,
)
from bot.engagement.usage import ActiveDays, FeatureUse


@dataclass(frozen=True)
class Touch:
    campaign_id: str
    step: str
    decided_at: datetime
    holdout: bool = False


@dataclass(frozen=True)
class Person:
    """Everything targeting knows about one person, as of `now`."""

    tenant_id: str
    aad_object_id: str
    reachable: bool  # installed, not uninstalled, a personal conversation, Teams has not refused it
    opted_out: bool = False  # typed "stop": no proactive messages at all
    stopped_kinds: frozenset[str] = frozenset()  # "stop these" per campaign kind
    installed_at: datetime | None = None
    time_zone: str | None = None
    locale: str | None = None
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    active_days: Collection[date] = frozenset()  # days with any event (at least the last 2 windows); ActiveDays
    features: Mapping[str, FeatureUse] = field(default_factory=dict)
    touches: Sequence[Touch] = ()
    recent_sends: Sequence[datetime] = ()  # proactive messages of every kind (the attention budget)

    @property
    def key(self) -> str:
        return f"{self.tenant_id}:{self.aad_object_id}"


class Outcome(StrEnum):
    SEND = "send"
    HOLDOUT = "holdout"  # matched and passed every gate, but in the campaign's holdout share: recorded, not sent
    BLOCKED = "blocked"  # matched, stopped by a gate
    DEFERRED = "deferred"  # matched, but a campaign earlier in the file won this run


@dataclass(frozen=True)
class Match:
    step: str  # the campaign's step: each is sent at most once per person
    reason: str
    facts: Mapping[str, str | int] = field(default_factory=dict)  # for the card: feature, count, days


@dataclass(frozen=True)
class Target:
    tenant_id: str
    aad_object_id: str
    campaign_id: str
    kind: str
    step: str
    reason: str
    outcome: Outcome
    blocked_by: str | None = None
    not_before: datetime | None = None
    facts: Mapping[str, str | int] = field(default_factory=dict)


def target(people: Iterable[Person], campaigns: CampaignSet, policy: AskPolicy, now: datetime) -> list[Target]:
    """Every match for every person, with its outcome; at most one SEND or HOLDOUT per person."""
    results: list[Target] = []
    person_campaigns = [c for c in campaigns.active if not isinstance(c, Renewal)]
    for person in people:
        today = local_time(now, person.time_zone).date()
        winner: str | None = None
        for campaign in person_campaigns:
            matched = match(campaign, person, today, now)
            if matched is None:
                continue

            if winner is not None:
                results.append(_result(person, campaign, matched, Outcome.DEFERRED, f"{winner} goes first"))
                continue
            refusal = gate(campaign, person, policy, now)
            if refusal is not None:
                results.append(_result(person, campaign, matched, Outcome.BLOCKED, *refusal))
                continue
            held = campaign.holdout_percent > 0 and in_sample(person.key, campaign.holdout_percent, salt=campaign.id)
            results.append(_result(person, campaign, matched, Outcome.HOLDOUT if held else Outcome.SEND))
            winner = campaign.id
    return results


def _result(
    person: Person,
    campaign: Campaign,
    matched: Match,
    outcome: Outcome,
    blocked_by: str | None = None,
    not_before: datetime | None = None,
) -> Target:
    return Target(
        person.tenant_id,
        person.aad_object_id,
        campaign.id,
        campaign.kind,
        matched.step,
        matched.reason,
        outcome,
        blocked_by,
        not_before,
        matched.facts,
    )


def gate(campaign: Campaign, person: Person, policy: AskPolicy, now: datetime) -> tuple[str, datetime | None] | None:
    """None when a message of this campaign may go to the person now; else why not (and when it could)."""
    if not person.reachable:
        return "not reachable (not installed, no personal chat, or Teams refused the last message)", None
    if person.opted_out:
        return "opted out of all messages", None
    if campaign.kind in person.stopped_kinds:
        return f"asked to stop {campaign.kind} messages", None
    last = max((t.decided_at for t in person.touches if t.campaign_id == campaign.id), default=None)
    if last is not None and campaign.cooldown_days and now - last < timedelta(days=campaign.cooldown_days):
        until = last + timedelta(days=campaign.cooldown_days)
        when = _days_ago(now, last)
        return f"cooldown: last {campaign.id} message {when} (every {campaign.cooldown_days} days)", until
    refusal = budget_refusal(policy.budget, person.recent_sends, now) or quiet_refusal(policy, now, person.time_zone)
    if refusal is not None:
        return refusal.reason, refusal.not_before
    return None


def match(campaign: Campaign, person: Person, today: date, now: datetime) -> Match | None:
    """The campaign's audience rule for one person; None when they are not in its audience (or had this step)."""
    done = {t.step for t in person.touches if t.campaign_id == campaign.id}
    found: Match | None
    if isinstance(campaign, Onboarding):
        found = _onboarding(campaign, person, today)
    elif isinstance(campaign, Adoption):
        found = _adoption(campaign, person, today, len(done))
    elif isinstance(campaign, Milestone):
        found = _milestone(campaign, person, now, done)
    elif isinstance(campaign, Legacy):
        found = _legacy(campaign, person, today)
    elif isinstance(campaign, Reengagement):
        found = _reengagement(campaign, person, today)
    else:
        return None  # renewals are per tenant: see renewal_targets
    return found if found is not None and found.step not in done else None


def active_count(days: Iterable[date], last_day: date, window: int) -> int:
    """Active days among the `window` days ending with `last_day` (inclusive)."""
    if isinstance(days, ActiveDays):
        return days.count(last_day, window)
    first = last_day - timedelta(days=window - 1)
    return sum(1 for d in days if first <= d <= last_day)


def _days_since_install(person: Person, today: date) -> int | None:
    if person.installed_at is None:
        return None
    return (today - local_time(person.installed_at, person.time_zone).date()).days


def _onboarding(campaign: Onboarding, person: Person, today: date) -> Match | None:
    day = _days_since_install(person, today)
    if day is None:
        return None
    due = [d for d in campaign.days if d <= day]
    if not due or day - max(due) > campaign.catch_up_days:
        return None
    step_day = max(due)
    return Match(f"day-{step_day}", f"installed {_plural(day, 'day')} ago: the day-{step_day} tip", {"day": step_day})


def _adoption(campaign: Adoption, person: Person, today: date, sent: int) -> Match | None:
    day = _days_since_install(person, today)
    if day is None or day < campaign.within_days or sent >= campaign.max_sends:
        return None
    use = person.features.get(campaign.milestone)
    if use is not None and use.total > 0:
        return None
    active = active_count(person.active_days, today, campaign.window_days)
    if active < campaign.min_active_days:
        return None
    reason = (
        f"active {active} of last {campaign.window_days} days, milestone `{campaign.milestone}` "
        f"not reached {_plural(day, 'day')} after install"
    )
    return Match(f"nudge-{sent + 1}", reason, {"feature": campaign.milestone, "days": day})


def _milestone(campaign: Milestone, person: Person, now: datetime, done: set[str]) -> Match | None:
    fresh = timedelta(days=campaign.recent_days)
    if campaign.event and campaign.counts:
        use = person.features.get(campaign.event)
        reached = [n for n in campaign.counts if use is not None and use.total >= n]
        if use is not None and reached and now - use.last_at <= fresh:
            top = max(reached)
            if f"count-{top}" not in done:
                reason = f"`{campaign.event}` used {use.total} times (the {top} milestone)"
                return Match(f"count-{top}", reason, {"feature": campaign.event, "count": top})
    since = person.first_seen_at or person.installed_at
    if since is None:
        return None
    age = (now - since).days
    for anniversary in campaign.anniversary_days:
        if anniversary <= age < anniversary + campaign.recent_days and (person.last_seen_at or since) >= now - fresh:
            reason = f"first active {age} days ago (the {anniversary}-day anniversary), active this week"
            return Match(f"anniversary-{anniversary}", reason, {"days": anniversary})
    return None


def _legacy(campaign: Legacy, person: Person, today: date) -> Match | None:
    window = campaign.window_days
    recent = active_count(person.active_days, today, window)
    previous = active_count(person.active_days, today - timedelta(days=window), window)
    drop_limit = previous * (1 - campaign.min_drop_percent / 100)
    if previous >= campaign.min_previous_active_days and recent <= drop_limit:
        fall = round(100 * (previous - recent) / previous)
        reason = f"active {recent} of last {window} days vs {previous} of the {window} before ({fall} % fewer)"
        return Match(f"drop-{today.isoformat()}", reason, {"recent": recent, "previous": previous, "days": window})
    day = _days_since_install(person, today)
    if campaign.key_features and day is not None and day >= campaign.unused_after_days and recent > 0:
        unused = [name for name in campaign.key_features if name not in person.features]
        if unused:
            names = ", ".join(f"`{name}`" for name in unused)
            reason = f"active, but never used {names} in {_plural(day, 'day')} since install"
            return Match(f"unused-{today.isoformat()}", reason, {"feature": unused[0], "days": day})
    return None


def _reengagement(campaign: Reengagement, person: Person, today: date) -> Match | None:
    base = person.last_seen_at or person.installed_at
    if base is None:
        return None  # never seen in the app nor installed: nothing to come back to
    last_day = local_time(base, person.time_zone).date()
    idle = (today - last_day).days
    if idle < campaign.inactive_days:
        return None
    seen = f"last seen {last_day.isoformat()}" if person.last_seen_at else f"never active since install {last_day}"
    return Match(f"absent-since-{last_day.isoformat()}", f"not seen for {idle} days ({seen})", {"days": idle})


# -- renewals: per tenant, for its CSMs ------------------------------------------------------------------------


@dataclass(frozen=True)
class RenewalTarget:
    tenant_id: str
    campaign_id: str
    renewal_date: date
    days_before: int  # which reminder (90, 60, 30)
    days_left: int
    cause_key: str  # one alert per tenant, renewal date and reminder
    reason: str


def renewal_targets(
    renewals: Mapping[str, date], campaign: Renewal, already: set[str], today: date
) -> list[RenewalTarget]:
    """The reminder due for each tenant with a renewal date: the tightest threshold not yet passed.

    A tenant whose date was set 58 days ahead gets the 60-day reminder, not a late 90-day one.
    """
    found = []
    for tenant_id, renewal in sorted(renewals.items()):
        left = (renewal - today).days
        due = [d for d in campaign.days_before if d >= left]
        if left < 0 or not due:
            continue
        threshold = min(due)
        key = f"renewal:{tenant_id}:{renewal.isoformat()}:{threshold}"
        if key in already:
            continue
        reason = f"renewal on {renewal.isoformat()}, in {_plural(left, 'day')} (the {threshold}-day reminder)"
        found.append(RenewalTarget(tenant_id, campaign.id, renewal, threshold, left, key, reason))
    return found


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _days_ago(now: datetime, then: datetime) -> str:
    days = (now - then).days
    return "today" if days == 0 else f"{_plural(days, 'day')} ago"
