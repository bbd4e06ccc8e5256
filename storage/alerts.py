"""Churn-risk alerts, their log, CSM assignments, and the pending causes (detractors, renewals) they come from."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engagement.phrases import Phrase, phrase_json
from storage.models import Alert, AlertLog, CsmAssignment, NpsAnswer, PendingAlert, Tenant, User
from storage.sql import insert_for, on_postgres

OPEN_STATUSES = ("open", "claimed", "snoozed")


@dataclass(frozen=True)
class NewAlert:
    tenant_id: str
    kind: str
    cause_key: str
    reasons: Sequence[Phrase | str]  # worded for each CSM in their language (cards.i18n)
    score: float | None = None
    survey_instance_id: str | None = None
    open_key: str | None = None  # defaults to cause_key


class AlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- CSM assignment -----------------------------------------------------------------------------------------

    async def assign(self, tenant_id: str, aad_object_id: str, position: int) -> None:
        stmt = insert_for(self.session, CsmAssignment).values(
            tenant_id=tenant_id, aad_object_id=aad_object_id, position=position
        )
        stmt = stmt.on_conflict_do_update(index_elements=["tenant_id", "aad_object_id"], set_={"position": position})
        await self.session.execute(stmt)

    async def unassign(self, tenant_id: str, aad_object_id: str) -> int:
        result = await self.session.execute(
            delete(CsmAssignment).where(
                CsmAssignment.tenant_id == tenant_id, CsmAssignment.aad_object_id == aad_object_id
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def assignments(self) -> dict[str, list[str]]:
        """tenant → assigned CSMs in escalation order."""
        stmt = select(CsmAssignment).order_by(
            CsmAssignment.tenant_id, CsmAssignment.position, CsmAssignment.aad_object_id
        )
        found: dict[str, list[str]] = {}
        for row in (await self.session.execute(stmt)).scalars():
            found.setdefault(row.tenant_id, []).append(row.aad_object_id)
        return found

    # -- tenants ------------------------------------------------------------------------------------------------

    async def tenants(self) -> Sequence[Tenant]:
        return (await self.session.execute(select(Tenant).order_by(Tenant.tenant_id))).scalars().all()

    async def installed_counts(self) -> dict[str, int]:
        stmt = (
            select(User.tenant_id, func.count())
            .where(User.installed_at.is_not(None), User.uninstalled_at.is_(None))
            .group_by(User.tenant_id)
        )
        return {tenant: int(n) for tenant, n in (await self.session.execute(stmt)).all()}

    async def set_health(self, tenant_id: str, score: float, at_risk: bool, now: datetime) -> None:
        await self.session.execute(
            update(Tenant)
            .where(Tenant.tenant_id == tenant_id)
            .values(health_score=score, at_risk=at_risk, health_checked_at=now)
        )

    async def set_name(self, tenant_id: str, name: str | None, now: datetime) -> None:
        stmt = insert_for(self.session, Tenant).values(
            tenant_id=tenant_id, first_seen_at=now, last_seen_at=now, display_name=name
        )
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=[Tenant.tenant_id], set_={"display_name": name})
        )

    # -- alerts -------------------------------------------------------------------------------------------------

    async def raise_alert(self, alert: NewAlert, now: datetime, escalate_at: datetime | None) -> int | None:
        """The new alert's id; None while an alert for the same cause is still open."""
        stmt = (
            insert_for(self.session, Alert)
            .values(
                tenant_id=alert.tenant_id,
                kind=alert.kind,
                cause_key=alert.cause_key,
                open_key=alert.open_key or alert.cause_key,
                survey_instance_id=alert.survey_instance_id,
                score=alert.score,
                reasons=json.dumps([phrase_json(reason) for reason in alert.reasons], ensure_ascii=False),
                status="open",
                escalation_level=0,
                escalate_at=escalate_at,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["open_key"])
            .returning(Alert.id)
        )
        alert_id = (await self.session.execute(stmt)).scalar_one_or_none()
        if alert_id is not None:
            await self.log(alert_id, now, None, "raised")
        return alert_id

    async def get(self, alert_id: int, *, lock: bool = False) -> Alert | None:
        stmt = select(Alert).where(Alert.id == alert_id)
        if lock and on_postgres(self.session):
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def update(self, alert_id: int, now: datetime, **values: object) -> None:
        await self.session.execute(update(Alert).where(Alert.id == alert_id).values(updated_at=now, **values))

    async def log(self, alert_id: int, at: datetime, actor: str | None, action: str, note: str | None = None) -> None:
        entry = AlertLog(alert_id=alert_id, at=at, actor=actor, action=action, note=note)
        self.session.add(entry)
        await self.session.flush()

    async def history(self, alert_id: int) -> Sequence[AlertLog]:
        stmt = select(AlertLog).where(AlertLog.alert_id == alert_id).order_by(AlertLog.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def all(self, *, open_only: bool = False) -> Sequence[Alert]:
        stmt = select(Alert).order_by(Alert.id)
        if open_only:
            stmt = stmt.where(Alert.status.in_(OPEN_STATUSES))
        return (await self.session.execute(stmt)).scalars().all()

    async def due_escalations(self, now: datetime) -> Sequence[Alert]:
        stmt = select(Alert).where(Alert.status == "open", Alert.escalate_at.is_not(None), Alert.escalate_at <= now)
        return (await self.session.execute(stmt.order_by(Alert.id))).scalars().all()

    async def wake_snoozed(self, now: datetime) -> list[int]:
        """Snoozes that ended: the alerts are open again (and their deadline restarts)."""
        result = await self.session.execute(
            update(Alert)
            .where(Alert.status == "snoozed", Alert.snoozed_until <= now)
            .values(status="open", snoozed_until=None, updated_at=now)
            .returning(Alert.id)
        )
        return [int(i) for i in result.scalars()]

    # -- causes waiting to become alerts ----------------------------------------------------------------------

    async def pending_causes(self) -> Sequence[PendingAlert]:
        stmt = select(PendingAlert).where(PendingAlert.status == "pending").order_by(PendingAlert.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def mark_cause(self, pending_id: int, status: str) -> None:
        await self.session.execute(update(PendingAlert).where(PendingAlert.id == pending_id).values(status=status))

    async def detractor_comment(self, survey_instance_id: str) -> tuple[int, str | None] | None:
        """The detractor's current score and comment (read when the card is drawn, so retention applies)."""
        stmt = select(NpsAnswer.score, NpsAnswer.comment).where(NpsAnswer.survey_instance_id == survey_instance_id)
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1]) if row else None
