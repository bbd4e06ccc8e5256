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
from bot.engagement.campaigns import Campaign, CampaignSet
from bot.engagement.kinds import Match, Window
from bot.engagement.kinds.base import plural
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
        last = last_decisions(self.touches)
        return Gates(self.reachable, self.opted_out, self.stopped_kinds, last, self.recent_sends, self.time_zone)


def last_decisions(touches: Iterable[Touch]) -> dict[str, datetime]:
    """When each campaign last decided about a person (sent or held out): its cooldown counts from there."""
    last: dict[str, datetime] = {}
    for touch in touches:
        if touch.campaign_id not in last or touch.decided_at > last[touch.campaign_id]:
            last[touch.campaign_id] = touch.decided_at
    return last


class Outcome(StrEnum):
    SEND = "send"
    HOLDOUT = "holdout"  # matched and passed every gate, but in the campaign's holdout share: recorded, not sent
    BLOCKED = "blocked"  # matched, stopped by a gate
    DEFERRED = "deferred"  # matched, but a campaign earlier in the file won this run


# Targets are built by the hundred thousand: a plain slotted dataclass, which is made much faster than a frozen
# one; nothing changes them once handed out (decide_alike sets a new one's outcome). Match: see bot.engagement.kinds.


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
    person_campaigns = [c for c in campaigns.active if c.per_person]
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
    found = campaign.match(PersonFacts(person, today), done, now)
    return found if found is not None and found.step not in done else None


class PersonFacts:
    """What the rules read (bot.engagement.kinds.Facts), from one loaded person."""

    def __init__(self, person: Person, today: date) -> None:
        self.person = person
        self.today = today

    @property
    def days_since_install(self) -> int | None:
        installed = self.person.installed_at
        if installed is None:
            return None
        return (self.today - local_time(installed, self.person.time_zone).date()).days

    @property
    def last_day(self) -> date | None:
        base = self.person.last_seen_at or self.person.installed_at
        return local_time(base, self.person.time_zone).date() if base is not None else None

    @property
    def seen(self) -> bool:
        return self.person.last_seen_at is not None

    @property
    def since(self) -> datetime | None:
        return self.person.first_seen_at or self.person.installed_at

    @property
    def last_seen_at(self) -> datetime | None:
        return self.person.last_seen_at

    def active(self, window: Window) -> int:
        return active_count(self.person.active_days, self.today - timedelta(days=window.ends_before), window.length)

    def total(self, event: str) -> int | None:
        use = self.person.features.get(event)
        return use.total if use is not None else None

    def last_used(self, event: str) -> datetime | None:
        use = self.person.features.get(event)
        return use.last_at if use is not None else None


def active_count(days: Iterable[date], last_day: date, window: int) -> int:
    """Active days among the `window` days ending with `last_day` (inclusive)."""
    if isinstance(days, ActiveDays):
        return days.count(last_day, window)
    first = last_day - timedelta(days=window - 1)
    return sum(1 for d in days if first <= d <= last_day)


def _days_ago(now: datetime, then: datetime) -> str:
    days = (now - then).days
    return "today" if days == 0 else f"{plural(days, 'day')} ago"
