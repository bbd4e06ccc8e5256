"""Survey instances, NPS answers (one per instance and person, edits kept as history) and pending alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import NpsAnswer, NpsAnswerHistory, PendingAlert, SurveyInstance, User, UtcDateTime
from storage.sql import on_postgres, upsert_sql


class SubmitOutcome(StrEnum):
    CREATED = "created"  # first answer stored
    UNCHANGED = "unchanged"  # the same answer again (a retry, a double click): nothing stored
    EDITED = "edited"  # a different answer within the grace window: updated, old values in history
    LOCKED = "locked"  # a different answer after the grace window: refused, the first one stands


@dataclass(frozen=True)
class SubmitResult:
    outcome: SubmitOutcome
    answer: NpsAnswer


class AskKey(Protocol):
    """What names an ask: its id, and its tenant (answers and alerts carry both)."""

    @property
    def id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...


@dataclass(frozen=True)
class NewAsk:
    """An ask to store (SurveyInstance): queued for delivery, unless a test stores one already sent."""

    id: str
    tenant_id: str
    user_id: int
    locale: str | None
    created_at: datetime
    expires_at: datetime
    forced: bool = False
    status: str = "queued"
    sent_at: datetime | None = None


@dataclass(frozen=True)
class ScoredAnswer:
    tenant_id: str
    score: int
    comment: str | None
    answered_at: datetime


# a card answer's writes, written once (see storage.sql.upsert_sql; storage.answers runs them too)
ANSWER_CONFLICT = "ON CONFLICT (survey_instance_id, aad_object_id) DO NOTHING"
ALERT_CONFLICT = "ON CONFLICT (kind, survey_instance_id) DO NOTHING"
INSERT_ANSWER_SQL = (
    "INSERT INTO nps_answers (survey_instance_id, tenant_id, aad_object_id, score, comment, answered_at, updated_at,"
    " edits) VALUES (:survey_instance_id, :tenant_id, :aad_object_id, :score, :comment, :now, :now, 0)"
    f" {ANSWER_CONFLICT} RETURNING id"
)
ADD_PENDING_ALERT_SQL = (
    "INSERT INTO pending_alerts (kind, tenant_id, survey_instance_id, aad_object_id, score, status, created_at)"
    " VALUES (:kind, :tenant_id, :survey_instance_id, :aad_object_id, :score, 'pending', :now)"
    f" {ALERT_CONFLICT} RETURNING id"
)
_INSERT_ANSWER = upsert_sql(INSERT_ANSWER_SQL, now=UtcDateTime())
_ADD_PENDING_ALERT = upsert_sql(ADD_PENDING_ALERT_SQL, now=UtcDateTime())


class SurveyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- instances -------------------------------------------------------------------------------

    async def add_instance(self, ask: NewAsk) -> None:
        self.session.add(
            SurveyInstance(
                id=ask.id,
                tenant_id=ask.tenant_id,
                user_id=ask.user_id,
                kind="nps",
                status=ask.status,
                locale=ask.locale,
                created_at=ask.created_at,
                sent_at=ask.sent_at,
                expires_at=ask.expires_at,
                forced=ask.forced,
            )
        )
        await self.session.flush()

    async def instance(self, instance_id: str) -> SurveyInstance | None:
        return await self.session.get(SurveyInstance, instance_id)

    async def answering(self, instance_id: str) -> tuple[SurveyInstance, User, NpsAnswer | None] | None:
        """An ask, the person it was sent to and their answer so far: what a card action reads, in one query."""
        answer = and_(NpsAnswer.survey_instance_id == SurveyInstance.id, NpsAnswer.aad_object_id == User.aad_object_id)
        stmt = (
            select(SurveyInstance, User, NpsAnswer)
            .join(User, User.id == SurveyInstance.user_id)
            .outerjoin(NpsAnswer, answer)
            .where(SurveyInstance.id == instance_id)
        )
        found = (await self.session.execute(stmt)).first()
        return None if found is None else (found[0], found[1], found[2])

    async def set_status(self, instance_id: str, status: str) -> None:
        await self.session.execute(update(SurveyInstance).where(SurveyInstance.id == instance_id).values(status=status))

    async def delivered(self, instance_id: str, outcome: str, activity_id: str | None, now: datetime) -> None:
        """The outbox's word on an ask: sent (with the Teams activity id), failed or unknown."""
        values: dict[str, object] = {"status": outcome}
        if outcome == "sent":
            values.update(sent_at=now, activity_id=activity_id)
        stmt = update(SurveyInstance).where(SurveyInstance.id == instance_id, SurveyInstance.status == "queued")
        await self.session.execute(stmt.values(**values))

    async def expired_unanswered(self, now: datetime) -> list[tuple[SurveyInstance, User | None]]:
        """Asks delivered, never answered (nor snoozed or declined), past their expiry, with the person asked
        (None: no longer stored): their cards should close."""
        answered = select(NpsAnswer.id).where(NpsAnswer.survey_instance_id == SurveyInstance.id).exists()
        stmt = (
            select(SurveyInstance, User)
            .outerjoin(User, User.id == SurveyInstance.user_id)
            .where(
                SurveyInstance.status == "sent",
                SurveyInstance.expires_at < now,
                SurveyInstance.activity_id.is_not(None),
                ~answered,
            )
        )
        return list((await self.session.execute(stmt.order_by(SurveyInstance.created_at))).tuples())

    async def last_asks(self, user_ids: Sequence[int]) -> dict[int, datetime]:
        """When each person was last asked: queued or delivered asks count, failed ones do not."""
        stmt = (
            select(SurveyInstance.user_id, func.max(SurveyInstance.created_at))
            .where(SurveyInstance.user_id.in_(user_ids), SurveyInstance.status != "failed")
            .group_by(SurveyInstance.user_id)
        )
        return {user_id: at for user_id, at in (await self.session.execute(stmt)).tuples() if at is not None}

    # -- answers ---------------------------------------------------------------------------------

    async def submit(
        self,
        instance: AskKey,
        aad_object_id: str,
        score: int,
        comment: str | None,
        now: datetime,
        grace_until: datetime,
    ) -> SubmitResult:
        """Store the answer once: INSERT … ON CONFLICT DO NOTHING, then compare with what is there."""
        values = {
            "survey_instance_id": instance.id,
            "tenant_id": instance.tenant_id,
            "aad_object_id": aad_object_id,
            "score": score,
            "comment": comment,
            "now": now,
        }
        inserted = (await self.session.execute(_INSERT_ANSWER, values)).scalar_one_or_none()
        if inserted is not None:  # the row as written (not read back: nothing else could have changed it yet)
            created = NpsAnswer(
                id=inserted,
                survey_instance_id=instance.id,
                tenant_id=instance.tenant_id,
                aad_object_id=aad_object_id,
                score=score,
                comment=comment,
                answered_at=now,
                updated_at=now,
                edits=0,
            )
            return SubmitResult(SubmitOutcome.CREATED, created)
        existing = await self._locked_answer(instance.id, aad_object_id)
        if existing.score == score and (comment is None or comment == existing.comment):
            return SubmitResult(SubmitOutcome.UNCHANGED, existing)
        if now > grace_until:
            return SubmitResult(SubmitOutcome.LOCKED, existing)
        self.session.add(
            NpsAnswerHistory(
                answer_id=existing.id,
                score=existing.score,
                comment=existing.comment,
                recorded_at=existing.updated_at,
                replaced_at=now,
            )
        )
        existing.score = score
        if comment is not None:
            existing.comment = comment
        existing.updated_at = now
        existing.edits += 1
        await self.session.flush()
        return SubmitResult(SubmitOutcome.EDITED, existing)

    async def _locked_answer(self, instance_id: str, aad_object_id: str) -> NpsAnswer:
        stmt = select(NpsAnswer).where(
            NpsAnswer.survey_instance_id == instance_id, NpsAnswer.aad_object_id == aad_object_id
        )
        if on_postgres(self.session):
            stmt = stmt.with_for_update()  # concurrent edits of one answer queue instead of losing history
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one()

    async def last_answers(self, aad_object_ids: Sequence[str]) -> dict[tuple[str, str], datetime]:
        """(tenant, AAD object id) → when that person last answered."""
        stmt = (
            select(NpsAnswer.tenant_id, NpsAnswer.aad_object_id, func.max(NpsAnswer.answered_at))
            .where(NpsAnswer.aad_object_id.in_(aad_object_ids))
            .group_by(NpsAnswer.tenant_id, NpsAnswer.aad_object_id)
        )
        rows = (await self.session.execute(stmt)).tuples()
        return {(tenant, aad): at for tenant, aad, at in rows if at is not None}

    async def scored_answers(self, tenant_id: str | None = None) -> list[ScoredAnswer]:
        stmt = select(NpsAnswer.tenant_id, NpsAnswer.score, NpsAnswer.comment, NpsAnswer.answered_at)
        if tenant_id:
            stmt = stmt.where(NpsAnswer.tenant_id == tenant_id)
        rows = (await self.session.execute(stmt.order_by(NpsAnswer.answered_at))).all()
        return [ScoredAnswer(r.tenant_id, r.score, r.comment, r.answered_at) for r in rows]

    async def sent_instances(self, tenant_id: str | None = None) -> list[tuple[datetime, bool]]:
        """(sent_at, answered?) for every ask that was delivered: the response-rate denominator."""
        answered = select(NpsAnswer.id).where(NpsAnswer.survey_instance_id == SurveyInstance.id).exists()
        stmt = select(SurveyInstance.sent_at, answered).where(
            SurveyInstance.kind == "nps", SurveyInstance.sent_at.is_not(None)
        )
        if tenant_id:
            stmt = stmt.where(SurveyInstance.tenant_id == tenant_id)
        return [(sent_at, bool(was_answered)) for sent_at, was_answered in (await self.session.execute(stmt)).all()]

    # -- alerts ----------------------------------------------------------------------------------

    async def add_pending_alert(
        self, kind: str, instance: AskKey, aad_object_id: str, score: int, now: datetime
    ) -> bool:
        """False when an alert for the same cause already exists."""
        values = {
            "kind": kind,
            "tenant_id": instance.tenant_id,
            "survey_instance_id": instance.id,
            "aad_object_id": aad_object_id,
            "score": score,
            "now": now,
        }
        return (await self.session.execute(_ADD_PENDING_ALERT, values)).scalar_one_or_none() is not None

    async def rescore_pending_alert(self, kind: str, instance_id: str, score: int) -> None:
        """An answer changed while its alert waits for the next alert run: the alert will say the newest score."""
        await self.session.execute(
            update(PendingAlert)
            .where(_pending(kind, instance_id))
            .values(score=score)
            .execution_options(synchronize_session=False)
        )

    async def withdraw_pending_alert(self, kind: str, instance_id: str) -> None:
        """An answer changed so that it no longer raises this alert, before an alert run made one of it."""
        await self.session.execute(
            delete(PendingAlert).where(_pending(kind, instance_id)).execution_options(synchronize_session=False)
        )


def _pending(kind: str, instance_id: str) -> ColumnElement[bool]:
    return and_(
        PendingAlert.kind == kind, PendingAlert.survey_instance_id == instance_id, PendingAlert.status == "pending"
    )
