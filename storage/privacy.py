"""Privacy in SQL: every row about one person, found and deleted; data past its retention period, purged."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Alert,
    AlertLog,
    CampaignOptOut,
    CampaignTouch,
    ConversationReference,
    CsmAssignment,
    InboundActivity,
    NpsAnswer,
    NpsAnswerHistory,
    OutboxMessage,
    PendingAlert,
    SurveyInstance,
    Tenant,
    TenantUsageDaily,
    UsageActivity,
    UsageEvent,
    UsageFeature,
    UsageProfile,
    User,
)
from storage.people import ConversationRepository
from storage.usage import UsageRepository


class PrivacyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._chats = ConversationRepository(session)
        self._usage = UsageRepository(session)

    async def forget(self, aad_object_id: str) -> dict[str, int]:
        """Delete every row about one person, in every tenant; returns rows deleted per table.

        Rows keyed by the AAD object id are deleted directly (answers, alerts, usage rollups and raw events, campaign
        touches); so are the rows hanging off the person's user rows (their chats, asks, answer history, outbox rows,
        "stop these" opt-outs, the activity log of their chats), which ON DELETE CASCADE would also remove, so that the
        count says what went. Per-tenant daily totals stay: they are counts about the organisation, not about a person.

        `aad_object_id` is in its stored form (lower case). Rows stored before ids were kept in one case, which
        migration 0019 could not lower because the same person also had them in lower case, go too.
        """
        counts: Counter[str] = Counter()
        for spelling in await self._spellings(aad_object_id):
            counts.update(await self._forget_spelling(spelling))
        return dict(counts)

    async def _spellings(self, aad_object_id: str) -> set[str]:
        """The id as given, and any other case of it still stored: a person's rows always include a user row, a usage
        profile or a CSM assignment, so those (one row a person) are where other spellings are looked for."""
        found = {aad_object_id}
        for column in (User.aad_object_id, UsageProfile.aad_object_id, CsmAssignment.aad_object_id):
            query = (
                select(column).where(func.lower(column) == aad_object_id.lower(), column != aad_object_id).distinct()
            )
            found.update((await self.session.execute(query)).scalars())
        return found

    async def _forget_spelling(self, aad_object_id: str) -> dict[str, int]:
        user_ids = list(
            (await self.session.execute(select(User.id).where(User.aad_object_id == aad_object_id))).scalars()
        )
        chats = select(ConversationReference.conversation_id).where(ConversationReference.user_id.in_(user_ids))
        asks = select(SurveyInstance.id).where(SurveyInstance.user_id.in_(user_ids))
        answers = select(NpsAnswer.id).where(NpsAnswer.aad_object_id == aad_object_id)
        # usage and touches are keyed (and indexed) by tenant, then person: asked tenant by tenant, each is a few index
        # look-ups instead of a scan of tables that hold a row per person and day or event
        tenants = await self._tenants_with_data()
        counts = {
            "inbound_activities": await self._rowcount(
                delete(InboundActivity).where(
                    or_(InboundActivity.aad_object_id == aad_object_id, InboundActivity.conversation_id.in_(chats))
                ),
            ),
            "outbox": await self._rowcount(delete(OutboxMessage).where(OutboxMessage.user_id.in_(user_ids))),
            "alerts": await self._rowcount(
                delete(Alert).where(Alert.survey_instance_id.in_(asks))
            ),  # their detractor alerts
            "pending_alerts": await self._rowcount(
                delete(PendingAlert).where(
                    or_(PendingAlert.aad_object_id == aad_object_id, PendingAlert.survey_instance_id.in_(asks))
                ),
            ),
            "nps_answer_history": await self._rowcount(
                delete(NpsAnswerHistory).where(NpsAnswerHistory.answer_id.in_(answers))
            ),
            "nps_answers": await self._rowcount(delete(NpsAnswer).where(NpsAnswer.aad_object_id == aad_object_id)),
            "survey_instances": await self._rowcount(
                delete(SurveyInstance).where(SurveyInstance.user_id.in_(user_ids))
            ),
            "campaign_optouts": await self._rowcount(
                delete(CampaignOptOut).where(CampaignOptOut.user_id.in_(user_ids))
            ),
            **{
                model.__tablename__: await self._rowcount(
                    delete(model).where(model.tenant_id.in_(tenants), model.aad_object_id == aad_object_id)
                )
                for model in (CampaignTouch, UsageEvent, UsageActivity, UsageFeature, UsageProfile)
            },
            "conversation_references": await self._chats.delete_for_users(user_ids) if user_ids else 0,
            "users": await self._rowcount(delete(User).where(User.aad_object_id == aad_object_id)),
        }
        counts["alert_actions_anonymised"] = sum(
            [
                await self._rowcount(update(AlertLog).where(AlertLog.actor == aad_object_id).values(actor=None)),
                await self._rowcount(update(Alert).where(Alert.claimed_by == aad_object_id).values(claimed_by=None)),
                await self._rowcount(update(Alert).where(Alert.resolved_by == aad_object_id).values(resolved_by=None)),
            ]
        )
        # cards for other people can name the person (an alert card's refresh list names every CSM): redact those copies
        counts["outbox_payloads_redacted"] = await self._rowcount(
            update(OutboxMessage)
            .where(OutboxMessage.payload.contains(aad_object_id))
            .values(payload=json.dumps({"redacted": "a person named here asked to be forgotten"})),
        )
        counts["csm_assignments"] = await self._rowcount(
            delete(CsmAssignment).where(CsmAssignment.aad_object_id == aad_object_id)
        )
        await self.session.flush()
        return counts

    async def _tenants_with_data(self) -> list[str]:
        """Every tenant that can hold rows about a person: those the bot met, and those usage arrived for (each usage
        batch adds to its tenant's daily totals, even for a tenant the bot has not met)."""
        met = select(Tenant.tenant_id)
        used = select(TenantUsageDaily.tenant_id).distinct()
        return sorted(set((await self.session.execute(met.union(used))).scalars()))

    async def _rowcount(self, statement: object) -> int:
        result = await self.session.execute(statement)  # type: ignore[call-overload]
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge(
        self, comments_before: datetime, activities_before: datetime, usage_events_before: datetime
    ) -> dict[str, int]:
        """Blank NPS comments (and their history) and delete the inbound-activity log and raw usage events older than
        the cutoffs; returns what changed per kind."""
        counts = {
            "nps_comments_blanked": await self._rowcount(
                update(NpsAnswer)
                .where(NpsAnswer.answered_at < comments_before, NpsAnswer.comment.is_not(None))
                .values(comment=None),
            ),
            "nps_history_comments_blanked": await self._rowcount(
                update(NpsAnswerHistory)
                .where(NpsAnswerHistory.recorded_at < comments_before, NpsAnswerHistory.comment.is_not(None))
                .values(comment=None),
            ),
            "inbound_activities_deleted": await self._rowcount(
                delete(InboundActivity).where(InboundActivity.received_at < activities_before)
            ),
            "usage_events_deleted": await self._usage.purge_raw(usage_events_before),
        }
        return counts
