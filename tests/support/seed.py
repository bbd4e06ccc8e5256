"""Put survey history straight into the database through the repositories (for reports and CLI tests)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from storage.engine import create_engine, session_factory
from storage.models import ConversationReference, OutboxMessage, Tenant, User
from storage.people import ConversationTarget, UserProfile
from storage.surveys import NewAsk
from storage.uow import UnitOfWork


async def seed_answers(
    database_url: str,
    tenant_id: str,
    scores: Sequence[int | None],
    answered_at: datetime,
    *,
    comments: Sequence[str | None] | None = None,
    user_prefix: str = "seed",
) -> None:
    """One user and one sent ask per entry; None in `scores` means asked but never answered."""
    engine = create_engine(database_url)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:
            await uow.tenants.touch(tenant_id, answered_at)
            for i, score in enumerate(scores):
                aad = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{user_prefix}-{tenant_id}-{i}"))
                user_id = await uow.users.upsert(UserProfile(tenant_id, aad, "en-US", "UTC"), answered_at)
                instance = NewAsk(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant_id,
                    user_id=user_id,
                    status="sent",
                    locale="en-US",
                    created_at=answered_at - timedelta(hours=1),
                    sent_at=answered_at - timedelta(hours=1),
                    expires_at=answered_at + timedelta(days=14),
                )
                await uow.surveys.add_instance(instance)
                if score is not None:
                    comment = comments[i] if comments else None
                    await uow.surveys.submit(instance, aad, score, comment, answered_at, answered_at)
            await uow.commit()
    finally:
        await engine.dispose()


async def seed_reachable_user(database_url: str, tenant_id: str, aad: str, service_url: str, now: datetime) -> None:
    """An installed user with a personal conversation the bot can write to."""
    engine = create_engine(database_url)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:
            await uow.tenants.touch(tenant_id, now)
            user_id = await uow.users.upsert(UserProfile(tenant_id, aad, "de-DE", "Europe/Berlin"), now)
            await uow.users.mark_installed(user_id, now)
            await uow.conversations.upsert(
                ConversationTarget(
                    f"a:personal-{aad}",
                    tenant_id,
                    "personal",
                    "msteams",
                    service_url,
                    "28:nurture-bot",
                    user_id=user_id,
                ),
                now,
            )
            await uow.commit()
    finally:
        await engine.dispose()


CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Hello"}]}


async def seed_outbox(
    database_url: str,
    service_url: str,
    tenants: list[str],
    per_tenant: int,
    *,
    messages_per_conversation: int = 1,
    prefix: str = "bulk",
) -> list[str]:
    """Installed people with personal chats and queued cards, inserted in bulk (thousands in a second).

    Returns the conversation ids; each gets `messages_per_conversation` queued cards, whose notification text
    (the activity's `summary`) is the message's dedupe key, so a test can tell every message that arrives apart.
    """
    now = datetime.now(UTC)
    engine = create_engine(database_url)
    conversations: list[str] = []
    try:
        async with engine.begin() as connection:
            existing = set((await connection.execute(select(Tenant.tenant_id))).scalars())
            new = [{"tenant_id": t, "first_seen_at": now, "last_seen_at": now} for t in tenants if t not in existing]
            if new:
                await connection.execute(insert(Tenant), new)
            users = [
                {
                    "tenant_id": tenant,
                    "aad_object_id": f"{prefix}-{tenant}-{i:06d}",
                    "installed_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for tenant in tenants
                for i in range(per_tenant)
            ]
            for start in range(0, len(users), 2000):
                await connection.execute(insert(User), users[start : start + 2000])
            ids = dict(
                (aad, uid)
                for uid, aad in (
                    await connection.execute(
                        select(User.id, User.aad_object_id).where(User.aad_object_id.like(f"{prefix}-%"))
                    )
                ).all()
            )
            references, outbox = [], []
            for user in users:
                conversation = f"a:{user['aad_object_id']}"
                conversations.append(conversation)
                references.append(
                    {
                        "conversation_id": conversation,
                        "tenant_id": user["tenant_id"],
                        "user_id": ids[user["aad_object_id"]],
                        "scope": "personal",
                        "channel_id": "msteams",
                        "service_url": service_url,
                        "bot_id": "28:nurture-bot",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                for n in range(messages_per_conversation):
                    outbox.append(
                        {
                            "dedupe_key": f"{conversation}:{n}",
                            "kind": "bulk",
                            "tenant_id": user["tenant_id"],
                            "user_id": ids[user["aad_object_id"]],
                            "conversation_id": conversation,
                            "payload": json.dumps({"card": CARD, "summary": f"{conversation}:{n}"}),
                            "status": "queued",
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                            "operation": "send",
                        }
                    )
            for start in range(0, len(references), 2000):
                await connection.execute(insert(ConversationReference), references[start : start + 2000])
            for start in range(0, len(outbox), 2000):
                await connection.execute(insert(OutboxMessage), outbox[start : start + 2000])
    finally:
        await engine.dispose()
    return conversations
