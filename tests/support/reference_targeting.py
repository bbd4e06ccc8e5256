"""The rules the plain way, for tests: load each person of a tenant as a Person and run bot.engagement.targeting.

This is the oracle the tenant-wide SQL path (storage.targeting through bot.usecases.audience) must agree with:
straightforward queries, every person loaded, the rules applied person by person.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engagement.asking import AskPolicy
from bot.engagement.campaigns import CampaignSet
from bot.engagement.reach import ChatOpening, ReachFacts, reachable
from bot.engagement.targeting import Person, Target, Touch, target
from bot.engagement.usage import ActiveDays, FeatureUse
from storage.campaigns import LIVE_SEND_STATUSES
from storage.models import (
    CampaignOptOut,
    CampaignTouch,
    ConversationReference,
    OutboxMessage,
    UsageActivity,
    UsageFeature,
    UsageProfile,
    User,
)


async def reference_targets(
    session: AsyncSession,
    tenant_id: str,
    campaigns: CampaignSet,
    policy: AskPolicy,
    now: datetime,
    opening: ChatOpening = ChatOpening.CREATE,
) -> list[Target]:
    return target(await load_people(session, tenant_id, campaigns, policy, now, opening), campaigns, policy, now)


async def load_people(
    session: AsyncSession,
    tenant_id: str,
    campaigns: CampaignSet,
    policy: AskPolicy,
    now: datetime,
    opening: ChatOpening,
) -> list[Person]:
    users = (await session.execute(select(User).where(User.tenant_id == tenant_id).order_by(User.id))).scalars().all()
    refs = (
        await session.execute(select(ConversationReference).where(ConversationReference.tenant_id == tenant_id))
    ).scalars()
    chats: set[int] = set()
    anchored = False
    for ref in refs:
        if ref.removed_at is None:
            anchored = True
            if ref.scope == "personal" and ref.user_id is not None:
                chats.add(ref.user_id)
    words: dict[str, dict[int, int]] = defaultdict(dict)
    for row in (await session.execute(select(UsageActivity).where(UsageActivity.tenant_id == tenant_id))).scalars():
        words[row.aad_object_id][row.word] = row.bits
    profiles = {
        p.aad_object_id: p
        for p in (await session.execute(select(UsageProfile).where(UsageProfile.tenant_id == tenant_id))).scalars()
    }
    names = set(campaigns.event_names())
    features: dict[str, dict[str, FeatureUse]] = defaultdict(dict)
    for f in (await session.execute(select(UsageFeature).where(UsageFeature.tenant_id == tenant_id))).scalars():
        if f.name in names:
            features[f.aad_object_id][f.name] = FeatureUse(f.total, f.first_at, f.last_at)
    touches: dict[str, list[Touch]] = defaultdict(list)
    for t in (await session.execute(select(CampaignTouch).where(CampaignTouch.tenant_id == tenant_id))).scalars():
        touches[t.aad_object_id].append(Touch(t.campaign_id, t.step, t.decided_at, t.holdout))
    stopped: dict[int, set[str]] = defaultdict(set)
    for o in (await session.execute(select(CampaignOptOut))).scalars():
        stopped[o.user_id].add(o.kind)
    sends: dict[int, list[datetime]] = defaultdict(list)
    since = now - timedelta(days=policy.budget.long_window_days)
    outbox = select(OutboxMessage).where(OutboxMessage.tenant_id == tenant_id)
    for m in (await session.execute(outbox)).scalars():
        if m.user_id is not None and m.created_at > since and m.status in LIVE_SEND_STATUSES:
            sends[m.user_id].append(m.created_at)
    people = []
    for user in users:
        seen = profiles.get(user.aad_object_id)
        facts = ReachFacts(
            has_chat=user.id in chats,
            installed=user.installed_at is not None,
            uninstalled=user.uninstalled_at is not None,
            refused=user.unreachable_at is not None,
            tenant_anchored=anchored,
        )
        people.append(
            Person(
                tenant_id=tenant_id,
                aad_object_id=user.aad_object_id,
                reachable=reachable(facts, opening),
                opted_out=user.opted_out_at is not None,
                stopped_kinds=frozenset(stopped.get(user.id, ())),
                installed_at=user.installed_at,
                time_zone=user.time_zone,
                locale=user.locale,
                first_seen_at=seen.first_seen_at if seen else None,
                last_seen_at=seen.last_seen_at if seen else None,
                active_days=ActiveDays.from_words(words.get(user.aad_object_id, {})),
                features=features.get(user.aad_object_id, {}),
                touches=touches.get(user.aad_object_id, []),
                recent_sends=sends.get(user.id, []),
            )
        )
    return people
