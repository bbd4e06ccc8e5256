"""Unit of work: one transaction per use case, committed only when the use case finishes without error."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.alerts import AlertRepository
from storage.campaigns import CampaignRepository
from storage.engine import DATABASE_UNAVAILABLE, READS_ONLY, DatabaseUnavailable, database_unavailable
from storage.outbox import OutboxRepository
from storage.people import ActivityLog, ConversationRepository, TenantRepository, UserRepository
from storage.privacy import PrivacyRepository
from storage.surveys import SurveyRepository
from storage.targeting import AudienceRepository
from storage.usage import UsageRepository


class UnitOfWork:
    """`async with UnitOfWork(sessions) as uow: ...; await uow.commit()` — rolled back if not committed."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def __aenter__(self) -> UnitOfWork:
        self.session = self.sessions()
        self.tenants = TenantRepository(self.session)
        self.users = UserRepository(self.session)
        self.conversations = ConversationRepository(self.session)
        self.activities = ActivityLog(self.session)
        self.surveys = SurveyRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        self.usage = UsageRepository(self.session)
        self.campaigns = CampaignRepository(self.session)
        self.alerts = AlertRepository(self.session)
        self.privacy = PrivacyRepository(self.session)
        self.audience = AudienceRepository(self.session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # close() rolls back whatever was not committed and detaches loaded objects without expiring them,
        # so values read inside the unit of work stay readable after it
        await self.session.close()
        if isinstance(exc, DATABASE_UNAVAILABLE) and not isinstance(exc, DatabaseUnavailable):
            if database_unavailable(exc):
                raise DatabaseUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc

    async def reads_only(self) -> None:
        """Declare, before anything else is done, that this unit of work only reads. On SQLite it then holds no
        writer lock (a campaign run over many people would make every answer and usage batch wait); on PostgreSQL
        the server refuses any write in it."""
        options: dict[str, Any] = {READS_ONLY: True}
        connection = await self.session.connection(execution_options=options)
        if connection.dialect.name == "postgresql":
            await connection.exec_driver_sql("SET TRANSACTION READ ONLY")

    async def commit(self) -> None:
        await self.session.commit()
