"""Campaign decisions for many people at once: the audience query finds them and their numbers, the rules decide.

storage.targeting keeps the people for whom some campaign's condition holds, in groups of people alike; each group
then goes through the rules themselves (bot.engagement.targeting's match functions, the ones the person-by-person
path calls) and the gates once, and each person gets their own targets (with their own holdout draw), so what
`nurture targets` shows and what `run-campaigns` queues is decided by one set of rules.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import Any

from bot.engagement.asking import AskPolicy, local_time
from bot.engagement.campaigns import Adoption, Campaign, CampaignSet, Legacy, Milestone, Onboarding, Reengagement
from bot.engagement.reach import ChatOpening, ReachFacts, reachable
from bot.engagement.targeting import (
    Gates,
    Match,
    Refusal,
    Target,
    adoption_match,
    decide_alike,
    gate,
    legacy_match,
    milestone_match,
    onboarding_match,
    reengagement_match,
)
from bot.engagement.usage import day_of
from storage.targeting import (
    HAS_CHAT,
    INSTALLED,
    OPTED_OUT,
    REFUSED,
    SEEN,
    UNINSTALLED,
    AudienceQuery,
    Candidate,
    Window,
    chat_owners,
    moment,
    moments,
)
from storage.uow import UnitOfWork

_NO_STEPS: frozenset[str] = frozenset()
_BY_USER = attrgetter("user_id")


@dataclass(frozen=True)
class _Touches:
    """What a person's touches say per campaign: steps done, how many, the last decision."""

    steps: dict[str, set[str]]
    last: dict[str, datetime]

    @classmethod
    def of(cls, touches: str | None) -> _Touches:
        steps: dict[str, set[str]] = {}
        last: dict[str, datetime] = {}
        for touch in touches.split(",") if touches else ():
            campaign, step, at = touch.split(" ", 2)
            steps.setdefault(campaign, set()).add(step)
            when = moment(at)
            if campaign not in last or when > last[campaign]:
                last[campaign] = when
        return cls(steps, last)


_NO_TOUCHES = _Touches({}, {})

# what the rules and the gates make of a group: the campaigns that match, in priority order, and the gates' answers
_Shape = tuple[list[tuple[Campaign, Match]], Callable[[Campaign], Refusal | None]]


@dataclass
class _Run:
    """What one `Audience.decisions` keeps while the groups come in."""

    anchored: set[str]  # tenants where the bot has a live conversation (chats can be opened there)
    found: dict[str, list[Target]] = field(default_factory=dict)  # by tenant
    alike: dict[tuple[int, bool, str | None], _Remembered] = field(default_factory=dict)  # people whose gates agree
    shapes: dict[tuple[Any, ...], _Shape | None] = field(default_factory=dict)  # by group key (Candidate[:-2])
    merge: set[str] = field(default_factory=set)  # tenants whose targets came in more than one batch

    def add(self, found: dict[str, list[Target]]) -> None:
        """A batch's targets, by tenant, after those of earlier batches, each tenant's sorted by person (a stable
        sort: a person's targets stay side by side in priority order). Sorted here, on the thread that decided them
        while the other parts are still worked out, the runs need only merging at the end, which is quicker than
        sorting them all at once."""
        for tenant, targets in found.items():
            targets.sort(key=_BY_USER)
            if tenant in self.found:
                self.merge.add(tenant)
            self.found.setdefault(tenant, []).extend(targets)

    def ordered(self) -> list[Target]:
        """Every target, by tenant and person. A tenant's targets that came in one batch (all of them, on
        PostgreSQL) are in order already: sorting them again would be time for nothing, every comparison reaching
        into a target somewhere in memory."""
        ordered: list[Target] = []
        for tenant in sorted(self.found):  # runs of targets in person order, one a batch: a sort merges them
            targets = self.found[tenant]
            ordered += sorted(targets, key=_BY_USER) if tenant in self.merge else targets
        return ordered


class Audience:
    """Decisions for one run (one moment): for a tenant, or for every tenant at once."""

    def __init__(self, campaigns: CampaignSet, policy: AskPolicy, opening: ChatOpening, now: datetime) -> None:
        self.policy = policy
        self.opening = opening
        self.now = now
        self.query = AudienceQuery(campaigns.active, now, now - timedelta(days=policy.budget.long_window_days))
        self._rules = [(c, self._rule(c)) for c in self.query.campaigns]
        self._todays: dict[str | None, date] = {}
        self._matters: dict[tuple[int, bool], bool] = {}

    @property
    def only_reads(self) -> bool:
        """Whether deciding only reads (UnitOfWork.reads_only may say so): it writes only when chats are opened by
        installing the app, since it then first adopts the app's users the bot has not met."""
        return self.opening is not ChatOpening.INSTALL

    async def decisions(self, uow: UnitOfWork, tenant_id: str | None = None) -> list[Target]:
        """Every match with its outcome, by tenant and person (the order of the person-by-person path), each with the
        person's user row and language. People alike are decided once (bot.engagement.targeting.decide_alike)."""
        tenants = [tenant_id] if tenant_id else await uow.tenants.ids()
        if not self.only_reads:
            for tenant in tenants:
                await uow.users.adopt_app_users(tenant, self.now)  # app users the bot has not met yet
        anchored = await uow.conversations.anchored(tenants) if tenants else set()
        run = _Run(anchored)
        later: list[Candidate] = []  # groups whose chats matter: decided once the chats are known

        def take(groups: list[Candidate]) -> None:  # a large SQLite audience: on a worker thread, as parts are found
            found: dict[str, list[Target]] = {}
            for group in groups:
                if self._chat_matters(group.flags, group.tenant_id in anchored):
                    later.append(group)
                else:
                    self._decide(group, run, found)
            run.add(found)

        with _collector_paused():  # arrays of hundreds of thousands of people, as many targets, no cycles among them
            await self.query.each(uow.session, take, tenant_id)
            if later:
                owners = await chat_owners(uow.session, tenant_id)
                found: dict[str, list[Target]] = {}
                for group in later:
                    for part in _by_chat(group, owners):
                        self._decide(part, run, found)
                run.add(found)
        return run.ordered()

    def _chat_matters(self, flags: int, anchored: bool) -> bool:
        """Whether having a personal chat changes whether people with these flags can be reached (mostly not: the
        installed people of an anchored tenant can be, chat or not, unless chats are not opened). Asked for every
        group, of a few dozen answers: remembered."""
        key = (flags, anchored)
        if key not in self._matters:
            self._matters[key] = reachable(_reach_facts(flags | HAS_CHAT, anchored), self.opening) != reachable(
                _reach_facts(flags, anchored), self.opening
            )
        return self._matters[key]

    def _decide(self, group: Candidate, run: _Run, found: dict[str, list[Target]]) -> None:
        """The decisions of a group of people alike, added to their tenant's `found`. What the rules and the gates
        make of the group is remembered for people alike in another part of the audience."""
        key = group[:-2]
        if key in run.shapes:
            shape = run.shapes[key]
        else:
            shape = run.shapes[key] = self._shape(group, run)
        if shape is None:
            return
        matched, refusal = shape
        targets = decide_alike(group.tenant_id, group.aad_object_ids, matched, refusal, group.user_ids, group.locale)
        found.setdefault(group.tenant_id, []).extend(targets)

    def _shape(self, group: Candidate, run: _Run) -> _Shape | None:
        """The campaigns that match people like these (None: none), and what the gates say of each."""
        touches = _Touches.of(group.touches) if group.touches else _NO_TOUCHES
        matched = self.matches(group, touches)
        if not matched:
            return None
        key = (group.flags, group.tenant_id in run.anchored, group.time_zone)
        remembered = run.alike.get(key)
        if remembered is None:
            gates = Gates(reachable(_reach_facts(*key[:2]), self.opening), bool(key[0] & OPTED_OUT), time_zone=key[2])
            remembered = run.alike[key] = _Remembered(gates, self.policy, self.now)
        if not (group.stopped or group.sends or group.touches):
            return matched, remembered
        base = remembered.gates
        gates = Gates(
            base.reachable,
            base.opted_out,
            frozenset(group.stopped.split("|")) if group.stopped else _NO_STEPS,
            touches.last,
            moments(group.sends),
            group.time_zone,
        )
        return matched, functools.partial(gate, gates=gates, policy=self.policy, now=self.now)

    def matches(self, c: Candidate, touches: _Touches) -> list[tuple[Campaign, Match]]:
        """The rules, on the numbers the query found, in priority order (the query kept the group because some
        campaign's condition held; which ones, the rules themselves say: a rule holds only where its condition does)."""
        matched: list[tuple[Campaign, Match]] = []
        steps = touches.steps
        for campaign, rule in self._rules:
            done = steps.get(campaign.id, _NO_STEPS) if steps else _NO_STEPS
            found = rule(c, done)
            if found is not None and found.step not in done:
                matched.append((campaign, found))
        return matched

    def _today(self, zone: str | None) -> date:
        if zone not in self._todays:
            self._todays[zone] = local_time(self.now, zone).date()
        return self._todays[zone]

    def _rule(self, campaign: Campaign) -> Callable[[Candidate, frozenset[str] | set[str]], Match | None]:
        """The campaign's match function, fed from a Candidate's columns."""
        q = self.query
        if isinstance(campaign, Onboarding):
            return lambda c, done: onboarding_match(campaign, c.days_since_install)
        if isinstance(campaign, Adoption):
            total, active = q.total(campaign.milestone), q.active(Window(0, campaign.window_days))
            return lambda c, done: adoption_match(
                campaign, c.days_since_install, c.numbers[total] or 0, c.numbers[active], len(done)
            )
        if isinstance(campaign, Milestone):
            since = q.since()
            event = (q.total(campaign.event), q.last_used(campaign.event)) if campaign.event else None

            def milestone(c: Candidate, done: frozenset[str] | set[str]) -> Match | None:
                n = c.numbers
                count = n[event[0]] if event is not None else None
                used = moment(n[event[1]]) if event is not None and count is not None else None
                first = moment(n[since]) if n[since] is not None else None
                seen = moment(n[since + 1]) if n[since + 1] is not None else None
                return milestone_match(campaign, self.now, count, used, first, seen, done)

            return milestone
        if isinstance(campaign, Legacy):
            w = campaign.window_days
            recent, previous = q.active(Window(0, w)), q.active(Window(w, w))
            totals = [(name, q.total(name)) for name in campaign.key_features]
            return lambda c, done: legacy_match(
                campaign,
                self._today(c.time_zone),
                c.numbers[recent],
                c.numbers[previous],
                c.days_since_install,
                [name for name, at in totals if c.numbers[at] is not None],
            )
        assert isinstance(campaign, Reengagement)
        return lambda c, done: reengagement_match(
            campaign,
            self._today(c.time_zone),
            day_of(c.last_day) if c.last_day is not None else None,
            bool(c.flags & SEEN),
        )


class _Remembered:
    """`gate` for people whose gates are alike, answered once per campaign."""

    def __init__(self, gates: Gates, policy: AskPolicy, now: datetime) -> None:
        self.gates, self.policy, self.now = gates, policy, now
        self.answers: dict[str, Refusal | None] = {}

    def __call__(self, campaign: Campaign) -> Refusal | None:
        if campaign.id not in self.answers:
            self.answers[campaign.id] = gate(campaign, self.gates, self.policy, self.now)
        return self.answers[campaign.id]


def _by_chat(group: Candidate, owners: set[int]) -> list[Candidate]:
    """The group split into those with a personal chat and those without (where that matters:
    Audience._chat_matters)."""
    parts = []
    everyone = list(zip(group.user_ids, group.aad_object_ids, strict=True))
    for chat in (True, False):
        people = [(user_id, aad) for user_id, aad in everyone if (user_id in owners) == chat]
        if people:
            user_ids, aad_object_ids = (list(column) for column in zip(*people, strict=True))
            flags = group.flags | HAS_CHAT if chat else group.flags
            parts.append(group._replace(flags=flags, user_ids=user_ids, aad_object_ids=aad_object_ids))
    return parts


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while the people arrive and their targets are made: its passes
    walk every list of people and every target made so far, again and again, and cost more than making them;
    targets hold no cycles for it to find. The process's other work goes on meanwhile (the query is awaited) and
    only finds cycles freed a few seconds later.

    Then what was made meanwhile joins the oldest generation without being examined (freeze, then unfreeze at once:
    nothing stays frozen): the first young collection would otherwise walk every one of those targets for nothing.
    A cycle freed meanwhile is found by the next full collection instead of the next young one."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:  # nobody else keeps objects frozen: unfreezing touches only ours
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()


def _reach_facts(flags: int, anchored: bool) -> ReachFacts:
    return ReachFacts(
        has_chat=bool(flags & HAS_CHAT),
        installed=bool(flags & INSTALLED),
        uninstalled=bool(flags & UNINSTALLED),
        refused=bool(flags & REFUSED),
        tenant_anchored=anchored,
    )
