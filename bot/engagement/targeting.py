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

import functools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from itertools import repeat

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
from bot.engagement.phrases import Phrase
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

    def gates(self) -> Gates:
        last: dict[str, datetime] = {}
        for t in self.touches:
            if t.campaign_id not in last or t.decided_at > last[t.campaign_id]:
                last[t.campaign_id] = t.decided_at
        return Gates(self.reachable, self.opted_out, self.stopped_kinds, last, self.recent_sends, self.time_zone)


class Outcome(StrEnum):
    SEND = "send"
    HOLDOUT = "holdout"  # matched and passed every gate, but in the campaign's holdout share: recorded, not sent
    BLOCKED = "blocked"  # matched, stopped by a gate
    DEFERRED = "deferred"  # matched, but a campaign earlier in the file won this run


# Match and Target are built by the hundred thousand: plain slotted dataclasses, which are made much faster than
# frozen ones; nothing changes them once handed out (decide_alike sets a new one's outcome).


@dataclass(slots=True)
class Match:
    step: str  # the campaign's step: each is sent at most once per person
    reason: str
    facts: Mapping[str, str | int] = field(default_factory=dict)  # for the card: feature, count, days


@dataclass(slots=True)
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
    # where the card goes, when decided from storage (bot.usecases.audience): the person's user row and language;
    # not part of what was decided, so not compared
    user_id: int | None = field(default=None, compare=False)
    locale: str | None = field(default=None, compare=False)


Refusal = tuple[str, datetime | None]  # why a gate holds a message back, and when it could go


@dataclass(slots=True)
class Gates:
    """What the gates read about one person (Person.gates() for a loaded person; storage.targeting for a tenant)."""

    reachable: bool
    opted_out: bool = False
    stopped_kinds: Collection[str] = frozenset()
    last_touch: Mapping[str, datetime] = field(default_factory=dict)  # campaign id → its last decision for them
    recent_sends: Sequence[datetime] = ()
    time_zone: str | None = None


def target(people: Iterable[Person], campaigns: CampaignSet, policy: AskPolicy, now: datetime) -> list[Target]:
    """Every match for every person, with its outcome; at most one SEND or HOLDOUT per person.

    The rules person by person, for people loaded one by one; storage.targeting runs the same rules for a whole
    tenant in SQL and hands `decide` its matches (tests check the two agree).
    """
    results: list[Target] = []
    person_campaigns = [c for c in campaigns.active if not isinstance(c, Renewal)]
    for person in people:
        today = local_time(now, person.time_zone).date()
        matched = [(c, m) for c in person_campaigns if (m := match(c, person, today, now)) is not None]
        if matched:
            gates = person.gates()
            refusal = functools.partial(gate, gates=gates, policy=policy, now=now)
            results += decide(person.tenant_id, person.aad_object_id, matched, refusal)
    return results


def decide(
    tenant_id: str,
    aad_object_id: str,
    matched: Sequence[tuple[Campaign, Match]],
    refusal: Callable[[Campaign], Refusal | None],
) -> list[Target]:
    """One person's matches (in priority order) → outcomes: the first that no gate refuses wins the run.

    `refusal` is `gate` for this person (callers with many people alike may remember its answers)."""
    results: list[Target] = []
    winner: str | None = None
    for campaign, found in matched:
        if winner is not None:
            results.append(_result(tenant_id, aad_object_id, campaign, found, Outcome.DEFERRED, f"{winner} goes first"))
            continue
        refused = refusal(campaign)
        if refused is not None:
            results.append(_result(tenant_id, aad_object_id, campaign, found, Outcome.BLOCKED, *refused))
            continue
        held = campaign.holdout_percent > 0 and in_sample(
            f"{tenant_id}:{aad_object_id}", campaign.holdout_percent, salt=campaign.id
        )
        results.append(_result(tenant_id, aad_object_id, campaign, found, Outcome.HOLDOUT if held else Outcome.SEND))
        winner = campaign.id
    return results


def decide_alike(
    tenant_id: str,
    aad_object_ids: Sequence[str],
    matched: Sequence[tuple[Campaign, Match]],
    refusal: Callable[[Campaign], Refusal | None],
    user_ids: Sequence[int] | None = None,
    locale: str | None = None,
) -> list[Target]:
    """`decide` for people alike in everything the rules and the gates read: each person's targets, as `decide`
    makes them, person after person (one per matched campaign each: no list per person, for hundreds of thousands
    of people). The gates are asked once for all; only the holdout share, drawn per person, is worked out for each.
    `user_ids` (beside `aad_object_ids`) and `locale`: where their cards go, set on their targets."""
    shape = decide(tenant_id, aad_object_ids[0], matched, refusal)
    fields = [(t.campaign_id, t.kind, t.step, t.reason, t.outcome, t.blocked_by, t.not_before, t.facts) for t in shape]
    n, count = len(aad_object_ids), len(fields)
    rows: Sequence[int | None] = [None] * n if user_ids is None else user_ids
    if len(rows) != n:
        raise ValueError(f"{len(rows)} user rows for {n} people")
    # each campaign's targets for everyone, made by map (cheaper than a comprehension unpacking the fields into
    # each call), then person after person
    made = [
        list(map(Target, repeat(tenant_id, n), aad_object_ids, *(repeat(v, n) for v in f), rows, repeat(locale, n)))
        for f in fields
    ]
    targets = made[0] if count == 1 else [t for person in zip(*made, strict=True) for t in person]
    for i, (campaign, _) in enumerate(matched):
        if shape[i].outcome in (Outcome.SEND, Outcome.HOLDOUT) and campaign.holdout_percent > 0:
            for aad_object_id, t in zip(aad_object_ids, targets[i::count], strict=True):
                held = in_sample(f"{tenant_id}:{aad_object_id}", campaign.holdout_percent, salt=campaign.id)
                t.outcome = Outcome.HOLDOUT if held else Outcome.SEND
    return targets


def _result(
    tenant_id: str,
    aad_object_id: str,
    campaign: Campaign,
    matched: Match,
    outcome: Outcome,
    blocked_by: str | None = None,
    not_before: datetime | None = None,
) -> Target:
    return Target(
        tenant_id,
        aad_object_id,
        campaign.id,
        campaign.kind,
        matched.step,
        matched.reason,
        outcome,
        blocked_by,
        not_before,
        matched.facts,
    )


def gate(campaign: Campaign, gates: Gates, policy: AskPolicy, now: datetime) -> Refusal | None:
    """None when a message of this campaign may go to the person now; else why not (and when it could)."""
    if not gates.reachable:
        return "not reachable (not installed, no personal chat, or Teams refused the last message)", None
    if gates.opted_out:
        return "opted out of all messages", None
    if campaign.kind in gates.stopped_kinds:
        return f"asked to stop {campaign.kind} messages", None
    last = gates.last_touch.get(campaign.id)
    if last is not None and campaign.cooldown_days and now - last < timedelta(days=campaign.cooldown_days):
        until = last + timedelta(days=campaign.cooldown_days)
        when = _days_ago(now, last)
        return f"cooldown: last {campaign.id} message {when} (every {campaign.cooldown_days} days)", until
    refusal = budget_refusal(policy.budget, gates.recent_sends, now) or quiet_refusal(policy, now, gates.time_zone)
    if refusal is not None:
        return refusal.reason, refusal.not_before
    return None


def match(campaign: Campaign, person: Person, today: date, now: datetime) -> Match | None:
    """The campaign's audience rule for one person; None when they are not in its audience (or had this step)."""
    done = {t.step for t in person.touches if t.campaign_id == campaign.id}
    found: Match | None
    if isinstance(campaign, Onboarding):
        found = onboarding_match(campaign, _days_since_install(person, today))
    elif isinstance(campaign, Adoption):
        use = person.features.get(campaign.milestone)
        found = adoption_match(
            campaign,
            _days_since_install(person, today),
            use.total if use is not None else 0,
            active_count(person.active_days, today, campaign.window_days),
            len(done),
        )
    elif isinstance(campaign, Milestone):
        use = person.features.get(campaign.event) if campaign.event else None
        since = person.first_seen_at or person.installed_at
        total, last_used = (use.total, use.last_at) if use is not None else (None, None)
        found = milestone_match(campaign, now, total, last_used, since, person.last_seen_at, done)
    elif isinstance(campaign, Legacy):
        window = campaign.window_days
        found = legacy_match(
            campaign,
            today,
            active_count(person.active_days, today, window),
            active_count(person.active_days, today - timedelta(days=window), window),
            _days_since_install(person, today),
            person.features,
        )
    elif isinstance(campaign, Reengagement):
        base = person.last_seen_at or person.installed_at
        last_day = local_time(base, person.time_zone).date() if base is not None else None
        found = reengagement_match(campaign, today, last_day, person.last_seen_at is not None)
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


# -- the rules, over the numbers they read (a loaded Person gives them, or the tenant's SQL does) -----------------


def onboarding_match(campaign: Onboarding, day: int | None) -> Match | None:
    """`day`: local calendar days since install."""
    if day is None:
        return None
    due = [d for d in campaign.days if d <= day]
    if not due or day - max(due) > campaign.catch_up_days:
        return None
    step_day = max(due)
    return Match(f"day-{step_day}", f"installed {_plural(day, 'day')} ago: the day-{step_day} tip", {"day": step_day})


def adoption_match(campaign: Adoption, day: int | None, milestone_total: int, active: int, sent: int) -> Match | None:
    """`active`: active days in the campaign's window ending today; `sent`: this campaign's steps done so far."""
    if day is None or day < campaign.within_days or sent >= campaign.max_sends:
        return None
    if milestone_total > 0 or active < campaign.min_active_days:
        return None
    reason = (
        f"active {active} of last {campaign.window_days} days, milestone `{campaign.milestone}` "
        f"not reached {_plural(day, 'day')} after install"
    )
    return Match(f"nudge-{sent + 1}", reason, {"feature": campaign.milestone, "days": day})


def milestone_match(
    campaign: Milestone,
    now: datetime,
    total: int | None,
    last_used: datetime | None,
    since: datetime | None,
    last_seen_at: datetime | None,
    done: Collection[str],
) -> Match | None:
    """`total`, `last_used`: lifetime use of the campaign's event (None: never); `since`: first seen, else installed."""
    fresh = timedelta(days=campaign.recent_days)
    if campaign.event and campaign.counts and total is not None and last_used is not None and now - last_used <= fresh:
        reached = [n for n in campaign.counts if total >= n]
        if reached:
            top = max(reached)
            if f"count-{top}" not in done:
                reason = f"`{campaign.event}` used {total} times (the {top} milestone)"
                return Match(f"count-{top}", reason, {"feature": campaign.event, "count": top})
    if since is None:
        return None
    age = (now - since).days
    for anniversary in campaign.anniversary_days:
        if anniversary <= age < anniversary + campaign.recent_days and (last_seen_at or since) >= now - fresh:
            reason = f"first active {age} days ago (the {anniversary}-day anniversary), active this week"
            return Match(f"anniversary-{anniversary}", reason, {"days": anniversary})
    return None


def legacy_match(
    campaign: Legacy, today: date, recent: int, previous: int, day: int | None, features: Collection[str]
) -> Match | None:
    """`recent` / `previous`: active days in the last window and the one before; `features`: events ever used."""
    window = campaign.window_days
    drop_limit = previous * (1 - campaign.min_drop_percent / 100)
    if previous >= campaign.min_previous_active_days and recent <= drop_limit:
        fall = round(100 * (previous - recent) / previous)
        reason = f"active {recent} of last {window} days vs {previous} of the {window} before ({fall} % fewer)"
        return Match(f"drop-{today.isoformat()}", reason, {"recent": recent, "previous": previous, "days": window})
    if campaign.key_features and day is not None and day >= campaign.unused_after_days and recent > 0:
        unused = [name for name in campaign.key_features if name not in features]
        if unused:
            names = ", ".join(f"`{name}`" for name in unused)
            reason = f"active, but never used {names} in {_plural(day, 'day')} since install"
            return Match(f"unused-{today.isoformat()}", reason, {"feature": unused[0], "days": day})
    return None


def reengagement_match(campaign: Reengagement, today: date, last_day: date | None, seen: bool) -> Match | None:
    """`last_day`: the local day last seen (else installed); `seen`: whether they were ever seen in the app."""
    if last_day is None:
        return None  # never seen in the app nor installed: nothing to come back to
    idle = (today - last_day).days
    if idle < campaign.inactive_days:
        return None
    what = f"last seen {last_day.isoformat()}" if seen else f"never active since install {last_day}"
    return Match(f"absent-since-{last_day.isoformat()}", f"not seen for {idle} days ({what})", {"days": idle})


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

    @property
    def phrase(self) -> Phrase:
        """The reason for the CSM's alert, worded in their language where it is shown."""
        date_, left, threshold = self.renewal_date.isoformat(), self.days_left, self.days_before
        return Phrase("reason.renewal_reminder", {"date": date_, "days": left, "threshold": threshold})


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
