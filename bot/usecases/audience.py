"""Campaign decisions for many people at once: the audience query finds them and their numbers, the rules decide.

storage.targeting keeps the people for whom some campaign's condition holds, in groups of people alike; each group
then goes through the rules themselves (each campaign's `match`, which the person-by-person path calls too) and
the gates once, and each person gets their own targets (with their own holdout draw), so what
`nurture targets` shows and what `run-campaigns` queues is decided by one set of rules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from bot.engagement.asking import AskPolicy
from bot.engagement.campaigns import Campaign, CampaignSet
from bot.engagement.kinds import Match
from bot.engagement.reach import ChatOpening, ReachFacts, reachable
from bot.engagement.targeting import Gates, Refusal, Target, Touch, decide_alike, gate, last_decisions
from bot.usecases.ports import CampaignsUnitOfWork
from storage.targeting import AudienceGroup, AudienceQuery

# entered around deciding a whole audience: the composition root passes bot.tuning.collector_paused
BulkWork = Callable[[], AbstractContextManager[None]]

_NO_STEPS: frozenset[str] = frozenset()
_BY_USER = attrgetter("user_id")


@dataclass(frozen=True)
class _Touches:
    """What a group's touches say per campaign: steps done, the last decision."""

    steps: dict[str, set[str]]
    last: dict[str, datetime]

    @classmethod
    def of(cls, touches: list[Touch]) -> _Touches:
        steps: dict[str, set[str]] = {}
        for touch in touches:
            steps.setdefault(touch.campaign_id, set()).add(touch.step)
        return cls(steps, last_decisions(touches))


_NO_TOUCHES = _Touches({}, {})

# what the rules and the gates make of a group: the campaigns that match, in priority order, and the gates' answers
_Shape = tuple[list[tuple[Campaign, Match]], Callable[[Campaign], Refusal | None]]


@dataclass
class _Run:
    """What one `Audience.decisions` keeps while the groups come in."""

    anchored: set[str]  # tenants where the bot has a live conversation (chats can be opened there)
    found: dict[str, list[Target]] = field(default_factory=dict)  # by tenant
    alike: dict[tuple[ReachFacts, bool, str | None], _Remembered] = field(default_factory=dict)  # gates that agree
    shapes: dict[tuple[Any, ...], _Shape | None] = field(default_factory=dict)  # by AudienceGroup.key
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

    def __init__(
        self,
        campaigns: CampaignSet,
        policy: AskPolicy,
        opening: ChatOpening,
        now: datetime,
        bulk_work: BulkWork = nullcontext,
    ) -> None:
        self.policy = policy
        self.bulk_work = bulk_work
        self.opening = opening
        self.now = now
        self.query = AudienceQuery(campaigns.active, now, now - timedelta(days=policy.budget.long_window_days))
        self._matters: dict[ReachFacts, bool] = {}

    @property
    def only_reads(self) -> bool:
        """Whether deciding only reads (UnitOfWork.reads_only may say so): it writes only when chats are opened by
        installing the app, since it then first adopts the app's users the bot has not met."""
        return self.opening is not ChatOpening.INSTALL

    async def decisions(self, uow: CampaignsUnitOfWork, tenant_id: str | None = None) -> list[Target]:
        """Every match with its outcome, by tenant and person (the order of the person-by-person path), each with the
        person's user row and language. People alike are decided once (bot.engagement.targeting.decide_alike)."""
        tenants = [tenant_id] if tenant_id else await uow.tenants.ids()
        if not self.only_reads:
            for tenant in tenants:
                await uow.users.adopt_app_users(tenant, self.now)  # app users the bot has not met yet
        anchored = await uow.conversations.anchored(tenants) if tenants else set()
        run = _Run(anchored)
        later: list[AudienceGroup] = []  # groups whose chats matter: decided once the chats are known

        def take(
            groups: list[AudienceGroup],
        ) -> None:  # a large SQLite audience: on a worker thread, as parts are found
            found: dict[str, list[Target]] = {}
            for group in groups:
                reach = group.reach(group.tenant_id in anchored)
                if self._chat_matters(reach):
                    later.append(group)
                else:
                    self._decide(group, reach, run, found)
            run.add(found)

        with self.bulk_work():  # arrays of hundreds of thousands of people, as many targets
            await uow.audience.groups(self.query, take, tenant_id)
            if later:
                owners = await uow.audience.chat_owners(tenant_id)
                found: dict[str, list[Target]] = {}
                for group in later:
                    for part in _by_chat(group, owners):
                        self._decide(part, part.reach(part.tenant_id in anchored), run, found)
                run.add(found)
        return run.ordered()

    def _chat_matters(self, reach: ReachFacts) -> bool:
        """Whether having a personal chat changes whether people like these can be reached (mostly not: the
        installed people of an anchored tenant can be, chat or not, unless chats are not opened). Asked for every
        group, of a few dozen answers: remembered."""
        if reach not in self._matters:
            self._matters[reach] = reachable(reach._replace(has_chat=True), self.opening) != reachable(
                reach, self.opening
            )
        return self._matters[reach]

    def _decide(self, group: AudienceGroup, reach: ReachFacts, run: _Run, found: dict[str, list[Target]]) -> None:
        """The decisions of a group of people alike, added to their tenant's `found`. What the rules and the gates
        make of the group is remembered for people alike in another part of the audience."""
        key = group.key
        if key in run.shapes:
            shape = run.shapes[key]
        else:
            shape = run.shapes[key] = self._shape(group, reach, run)
        if shape is None:
            return
        matched, refusal = shape
        targets = decide_alike(group.tenant_id, group.aad_object_ids, matched, refusal, group.user_ids, group.locale)
        found.setdefault(group.tenant_id, []).extend(targets)

    def _shape(self, group: AudienceGroup, reach: ReachFacts, run: _Run) -> _Shape | None:
        """The campaigns that match people like these (None: none), and what the gates say of each."""
        history = group.has_history
        touches = _Touches.of(group.touches) if history else _NO_TOUCHES
        matched = self.matches(group, touches)
        if not matched:
            return None
        key = (reach, group.opted_out, group.time_zone)
        remembered = run.alike.get(key)
        if remembered is None:
            gates = Gates(reachable(reach, self.opening), group.opted_out, time_zone=group.time_zone)
            remembered = run.alike[key] = _Remembered(gates, self.policy, self.now)
        if not history:
            return matched, remembered
        base = remembered.gates
        gates = Gates(
            base.reachable, base.opted_out, group.stopped_kinds, touches.last, group.recent_sends, group.time_zone
        )
        return matched, functools.partial(gate, gates=gates, policy=self.policy, now=self.now)

    def matches(self, group: AudienceGroup, touches: _Touches) -> list[tuple[Campaign, Match]]:
        """The rules, on the facts the query found, in priority order (the query kept the group because some
        campaign's prefilter held; which campaigns match, the rules themselves say)."""
        matched: list[tuple[Campaign, Match]] = []
        steps = touches.steps
        for campaign in self.query.campaigns:
            done = steps.get(campaign.id, _NO_STEPS) if steps else _NO_STEPS
            found = campaign.match(group, done, self.now)
            if found is not None and found.step not in done:
                matched.append((campaign, found))
        return matched


class _Remembered:
    """`gate` for people whose gates are alike, answered once per campaign."""

    def __init__(self, gates: Gates, policy: AskPolicy, now: datetime) -> None:
        self.gates, self.policy, self.now = gates, policy, now
        self.answers: dict[str, Refusal | None] = {}

    def __call__(self, campaign: Campaign) -> Refusal | None:
        if campaign.id not in self.answers:
            self.answers[campaign.id] = gate(campaign, self.gates, self.policy, self.now)
        return self.answers[campaign.id]


def _by_chat(group: AudienceGroup, owners: set[int]) -> list[AudienceGroup]:
    """The group split into those with a personal chat and those without (where that matters:
    Audience._chat_matters)."""
    parts = []
    everyone = list(zip(group.user_ids, group.aad_object_ids, strict=True))
    for chat in (True, False):
        people = [(user_id, aad) for user_id, aad in everyone if (user_id in owners) == chat]
        if people:
            user_ids, aad_object_ids = (list(column) for column in zip(*people, strict=True))
            parts.append(group.with_chat(chat, user_ids, aad_object_ids))
    return parts
