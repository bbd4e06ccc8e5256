"""Tenants, people, their conversations with the bot and the inbound activity log: one small repository each.

Writes that can race (Teams sends the same install twice) are upserts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ConversationReference, InboundActivity, Tenant, UsageProfile, User, UtcDateTime
from storage.sql import insert_for


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def touch(self, tenant_id: str, now: datetime) -> None:
        stmt = insert_for(self.session, Tenant).values(tenant_id=tenant_id, first_seen_at=now, last_seen_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=[Tenant.tenant_id], set_={"last_seen_at": now})
        await self.session.execute(stmt)

    async def get(self, tenant_id: str) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def set_renewal(self, tenant_id: str, renewal: date | None, now: datetime) -> None:
        """Set (or clear) a tenant's renewal date; a tenant not seen in Teams yet is created."""
        stmt = insert_for(self.session, Tenant).values(
            tenant_id=tenant_id, first_seen_at=now, last_seen_at=now, renewal_date=renewal
        )
        stmt = stmt.on_conflict_do_update(index_elements=[Tenant.tenant_id], set_={"renewal_date": renewal})
        await self.session.execute(stmt)

    async def renewals(self) -> dict[str, date]:
        stmt = select(Tenant.tenant_id, Tenant.renewal_date).where(Tenant.renewal_date.is_not(None))
        return {tenant_id: renewal for tenant_id, renewal in (await self.session.execute(stmt)).all()}

    async def ids(self) -> list[str]:
        return list((await self.session.execute(select(Tenant.tenant_id).order_by(Tenant.tenant_id))).scalars())

    async def count(self) -> int:
        return int((await self.session.execute(select(func.count()).select_from(Tenant))).scalar_one())


@dataclass(frozen=True)
class UserProfile:
    """What an inbound activity tells us about a user; None leaves a stored value as it is."""

    tenant_id: str
    aad_object_id: str
    locale: str | None = None
    time_zone: str | None = None


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, profile: UserProfile, now: datetime) -> int:
        """Create or refresh the user; returns the user's row id."""
        values: dict[str, Any] = {
            "tenant_id": profile.tenant_id,
            "aad_object_id": profile.aad_object_id,
            "locale": profile.locale,
            "time_zone": profile.time_zone,
            "created_at": now,
            "updated_at": now,
        }
        # any activity from the person means Teams can reach them again (a 403/404 marked them unreachable)
        changes: dict[str, Any] = {"updated_at": now, "unreachable_at": None, "unreachable_reason": None}
        if profile.locale:
            changes["locale"] = profile.locale
        if profile.time_zone:
            changes["time_zone"] = profile.time_zone
        stmt = insert_for(self.session, User).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=[User.tenant_id, User.aad_object_id], set_=changes)
        result = await self.session.execute(stmt.returning(User.id))
        return int(result.scalar_one())

    async def get(self, tenant_id: str, aad_object_id: str) -> User | None:
        stmt = select(User).where(User.tenant_id == tenant_id, User.aad_object_id == aad_object_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def find_by_aad(self, aad_object_id: str) -> Sequence[User]:
        return (await self.session.execute(select(User).where(User.aad_object_id == aad_object_id))).scalars().all()

    async def mark_installed(self, user_id: int, now: datetime) -> None:
        await self.session.execute(
            update(User).where(User.id == user_id).values(installed_at=now, uninstalled_at=None, updated_at=now)
        )

    async def mark_uninstalled(self, user_id: int, now: datetime) -> None:
        await self.session.execute(update(User).where(User.id == user_id).values(uninstalled_at=now, updated_at=now))

    async def set_opted_out(self, user_id: int, opted_out: bool, now: datetime) -> None:
        values = {"opted_out_at": now if opted_out else None, "updated_at": now}
        await self.session.execute(update(User).where(User.id == user_id).values(**values))

    async def set_nps_snooze(self, user_id: int, until: datetime | None, now: datetime) -> None:
        await self.session.execute(
            update(User).where(User.id == user_id).values(nps_snoozed_until=until, updated_at=now)
        )

    async def set_nps_declined(self, user_id: int, now: datetime) -> None:
        await self.session.execute(update(User).where(User.id == user_id).values(nps_declined_at=now, updated_at=now))

    async def time_zones(self, user_ids: Collection[int]) -> dict[int, str | None]:
        """Each person's time zone (IANA name, None when Teams never said)."""
        if not user_ids:
            return {}
        stmt = select(User.id, User.time_zone).where(User.id.in_(list(user_ids)))
        return {user_id: zone for user_id, zone in (await self.session.execute(stmt)).tuples()}

    async def get_by_id(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def adopt_app_users(self, tenant_id: str, now: datetime) -> int:
        """Give every app user seen in the usage events (and not met by the bot yet) a user row, so campaigns can
        reach them through a chat Nurture opens. Only ids are copied: nothing else is known about them."""
        known = select(User.id).where(User.tenant_id == tenant_id, User.aad_object_id == UsageProfile.aad_object_id)
        rows = select(
            UsageProfile.tenant_id,
            UsageProfile.aad_object_id,
            literal(now, UtcDateTime()).label("created_at"),
            literal(now, UtcDateTime()).label("updated_at"),
        ).where(UsageProfile.tenant_id == tenant_id, ~known.exists())
        stmt = insert_for(self.session, User).from_select(
            ["tenant_id", "aad_object_id", "created_at", "updated_at"], rows
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=[User.tenant_id, User.aad_object_id])  # met meanwhile
        result = await self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def in_tenant(self, tenant_id: str) -> Sequence[User]:
        stmt = select(User).where(User.tenant_id == tenant_id).order_by(User.id)
        return (await self.session.execute(stmt)).scalars().all()


@dataclass(frozen=True)
class ConversationTarget:
    """The fields needed to reach a conversation again, with no display names."""

    conversation_id: str
    tenant_id: str
    scope: str
    channel_id: str
    service_url: str
    bot_id: str
    team_id: str | None = None
    user_id: int | None = None


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, target: ConversationTarget, now: datetime) -> None:
        values = {**target.__dict__, "removed_at": None, "created_at": now, "updated_at": now}
        changes = {k: v for k, v in values.items() if k not in ("conversation_id", "created_at")}
        if target.user_id is None:
            changes.pop("user_id")  # a channel event names no user: keep the one we know
        stmt = insert_for(self.session, ConversationReference).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=[ConversationReference.conversation_id], set_=changes)
        await self.session.execute(stmt)

    async def mark_removed(self, conversation_id: str, now: datetime) -> None:
        await self.session.execute(
            update(ConversationReference)
            .where(ConversationReference.conversation_id == conversation_id)
            .values(removed_at=now, updated_at=now)
        )

    async def get(self, conversation_id: str) -> ConversationReference | None:
        stmt = select(ConversationReference).where(ConversationReference.conversation_id == conversation_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_many(self, conversation_ids: Collection[str]) -> dict[str, ConversationReference]:
        stmt = select(ConversationReference).where(ConversationReference.conversation_id.in_(conversation_ids))
        return {c.conversation_id: c for c in (await self.session.execute(stmt)).scalars()}

    async def personal_for(self, user_id: int) -> ConversationReference | None:
        """The user's live personal chat with the bot, if any."""
        stmt = (
            select(ConversationReference)
            .where(
                ConversationReference.user_id == user_id,
                ConversationReference.scope == "personal",
                ConversationReference.removed_at.is_(None),
            )
            .order_by(ConversationReference.updated_at.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def with_personal_chat(self, user_ids: Sequence[int]) -> set[int]:
        """Which of these people have a live personal chat with the bot."""
        stmt = select(ConversationReference.user_id).where(
            ConversationReference.user_id.in_(user_ids),
            ConversationReference.scope == "personal",
            ConversationReference.removed_at.is_(None),
        )
        return {user_id for user_id in (await self.session.execute(stmt)).scalars() if user_id is not None}

    async def anchored(self, tenant_ids: Sequence[str]) -> set[str]:
        """Which of these tenants have a live conversation of the bot (see `anchor`): a look-up per tenant that
        stops at its first live conversation (a DISTINCT over the conversations would read every personal chat)."""
        live = (
            select(ConversationReference.id)
            .where(ConversationReference.tenant_id == Tenant.tenant_id, ConversationReference.removed_at.is_(None))
            .exists()
        )
        stmt = select(Tenant.tenant_id).where(Tenant.tenant_id.in_(tenant_ids), live)
        return set((await self.session.execute(stmt)).scalars())

    async def anchor(self, tenant_id: str) -> ConversationReference | None:
        """A live conversation of the bot in the tenant: the service URL and bot id a new chat is opened through."""
        stmt = (
            select(ConversationReference)
            .where(ConversationReference.tenant_id == tenant_id, ConversationReference.removed_at.is_(None))
            .order_by(ConversationReference.updated_at.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def delete_for_users(self, user_ids: Sequence[int]) -> int:
        result = await self.session.execute(
            delete(ConversationReference).where(ConversationReference.user_id.in_(user_ids))
        )
        return int(getattr(result, "rowcount", 0) or 0)


class ActivityLog:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        conversation_id: str,
        activity_id: str,
        activity_type: str,
        tenant_id: str | None,
        aad_object_id: str | None,
        now: datetime,
    ) -> bool:
        """Insert the activity; False when the same (conversation, activity id) was already recorded."""
        stmt = insert_for(self.session, InboundActivity).values(
            conversation_id=conversation_id,
            activity_id=activity_id,
            activity_type=activity_type,
            tenant_id=tenant_id,
            aad_object_id=aad_object_id,
            received_at=now,
        )
        stmt = stmt.on_conflict_do_nothing(
            index_elements=[InboundActivity.conversation_id, InboundActivity.activity_id]
        )
        result = await self.session.execute(stmt.returning(InboundActivity.id))
        return result.scalar_one_or_none() is not None

    async def forget(self, conversation_id: str, activity_id: str) -> None:
        """Drop a claim whose turn failed, so Teams' retry is processed instead of skipped."""
        await self.session.execute(
            delete(InboundActivity).where(
                InboundActivity.conversation_id == conversation_id, InboundActivity.activity_id == activity_id
            )
        )

    async def count(self) -> int:
        return int((await self.session.execute(select(func.count()).select_from(InboundActivity))).scalar_one())
