"""Put survey history straight into the database through the repositories (for reports and CLI tests)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from storage.engine import create_engine, session_factory
from storage.models import SurveyInstance
from storage.repositories import ConversationTarget, UserProfile
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
                instance = SurveyInstance(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant_id,
                    user_id=user_id,
                    kind="nps",
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
