"""Forgetting a person and purging data past its retention period."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update

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
from storage.uow import UnitOfWork


async def forget_user(uow: UnitOfWork, aad_object_id: str) -> dict[str, int]:
    """Delete every row about one person, in every tenant; returns rows deleted per table.

    Rows keyed by the AAD object id are deleted directly (answers, alerts, usage rollups and raw events, campaign
    touches); so are the rows hanging off the person's user rows (their chats, asks, answer history, outbox rows,
    "stop these" opt-outs, the activity log of their chats), which ON DELETE CASCADE would also remove, so that the
    count says what went. Per-tenant daily totals stay: they are counts about the organisation, not about a person.

    `aad_object_id` is in its stored form (lower case). Rows stored before ids were kept in one case, which
    migration 0019 could not lower because the same person also had them in lower case, go too.
    """
    counts: Counter[str] = Counter()
    for spelling in await _spellings(uow, aad_object_id):
        counts.update(await _forget_spelling(uow, spelling))
    return dict(counts)


async def _spellings(uow: UnitOfWork, aad_object_id: str) -> set[str]:
    """The id as given, and any other case of it still stored: a person's rows always include a user row, a usage
    profile or a CSM assignment, so those (one row a person) are where other spellings are looked for."""
    found = {aad_object_id}
    for column in (User.aad_object_id, UsageProfile.aad_object_id, CsmAssignment.aad_object_id):
        query = select(column).where(func.lower(column) == aad_object_id.lower(), column != aad_object_id).distinct()
        found.update((await uow.session.execute(query)).scalars())
    return found


async def _forget_spelling(uow: UnitOfWork, aad_object_id: str) -> dict[str, int]:
    session = uow.session
    user_ids = [u.id for u in await uow.users.find_by_aad(aad_object_id)]
    chats = select(ConversationReference.conversation_id).where(ConversationReference.user_id.in_(user_ids))
    asks = select(SurveyInstance.id).where(SurveyInstance.user_id.in_(user_ids))
    answers = select(NpsAnswer.id).where(NpsAnswer.aad_object_id == aad_object_id)
    # usage and touches are keyed (and indexed) by tenant, then person: asked tenant by tenant, each is a few index
    # look-ups instead of a scan of tables that hold a row per person and day or event
    tenants = await _tenants_with_data(uow)
    counts = {
        "inbound_activities": await _rowcount(
            uow,
            delete(InboundActivity).where(
                or_(InboundActivity.aad_object_id == aad_object_id, InboundActivity.conversation_id.in_(chats))
            ),
        ),
        "outbox": await _rowcount(uow, delete(OutboxMessage).where(OutboxMessage.user_id.in_(user_ids))),
        "alerts": await _rowcount(
            uow, delete(Alert).where(Alert.survey_instance_id.in_(asks))
        ),  # their detractor alerts
        "pending_alerts": await _rowcount(
            uow,
            delete(PendingAlert).where(
                or_(PendingAlert.aad_object_id == aad_object_id, PendingAlert.survey_instance_id.in_(asks))
            ),
        ),
        "nps_answer_history": await _rowcount(
            uow, delete(NpsAnswerHistory).where(NpsAnswerHistory.answer_id.in_(answers))
        ),
        "nps_answers": await _rowcount(uow, delete(NpsAnswer).where(NpsAnswer.aad_object_id == aad_object_id)),
        "survey_instances": await _rowcount(uow, delete(SurveyInstance).where(SurveyInstance.user_id.in_(user_ids))),
        "campaign_optouts": await _rowcount(uow, delete(CampaignOptOut).where(CampaignOptOut.user_id.in_(user_ids))),
        **{
            model.__tablename__: await _rowcount(
                uow, delete(model).where(model.tenant_id.in_(tenants), model.aad_object_id == aad_object_id)
            )
            for model in (CampaignTouch, UsageEvent, UsageActivity, UsageFeature, UsageProfile)
        },
        "conversation_references": await uow.conversations.delete_for_users(user_ids) if user_ids else 0,
        "users": await _rowcount(uow, delete(User).where(User.aad_object_id == aad_object_id)),
    }
    counts["alert_actions_anonymised"] = sum(
        [
            await _rowcount(uow, update(AlertLog).where(AlertLog.actor == aad_object_id).values(actor=None)),
            await _rowcount(uow, update(Alert).where(Alert.claimed_by == aad_object_id).values(claimed_by=None)),
            await _rowcount(uow, update(Alert).where(Alert.resolved_by == aad_object_id).values(resolved_by=None)),
        ]
    )
    # cards for other people can name the person (an alert card's refresh list names every CSM): redact those copies
    counts["outbox_payloads_redacted"] = await _rowcount(
        uow,
        update(OutboxMessage)
        .where(OutboxMessage.payload.contains(aad_object_id))
        .values(payload=json.dumps({"redacted": "a person named here asked to be forgotten"})),
    )
    counts["csm_assignments"] = await _rowcount(
        uow, delete(CsmAssignment).where(CsmAssignment.aad_object_id == aad_object_id)
    )
    await session.flush()
    return counts


async def _tenants_with_data(uow: UnitOfWork) -> list[str]:
    """Every tenant that can hold rows about a person: those the bot met, and those usage arrived for (each usage
    batch adds to its tenant's daily totals, even for a tenant the bot has not met)."""
    met = select(Tenant.tenant_id)
    used = select(TenantUsageDaily.tenant_id).distinct()
    return sorted(set((await uow.session.execute(met.union(used))).scalars()))


async def _rowcount(uow: UnitOfWork, statement: object) -> int:
    result = await uow.session.execute(statement)  # type: ignore[call-overload]
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Retention:
    comment_days: int  # free-text NPS comments (and their edit history) are blanked after this many days
    activity_log_days: int  # the inbound-activity log (retry dedupe) is deleted after this many days
    usage_event_days: int = 30  # raw usage events (kept for dedupe only; rollups stay) are deleted after this many days


async def purge(uow: UnitOfWork, retention: Retention, now: datetime) -> dict[str, int]:
    comment_cutoff = now - timedelta(days=retention.comment_days)
    log_cutoff = now - timedelta(days=retention.activity_log_days)
    counts = {
        "nps_comments_blanked": await _rowcount(
            uow,
            update(NpsAnswer)
            .where(NpsAnswer.answered_at < comment_cutoff, NpsAnswer.comment.is_not(None))
            .values(comment=None),
        ),
        "nps_history_comments_blanked": await _rowcount(
            uow,
            update(NpsAnswerHistory)
            .where(NpsAnswerHistory.recorded_at < comment_cutoff, NpsAnswerHistory.comment.is_not(None))
            .values(comment=None),
        ),
        "inbound_activities_deleted": await _rowcount(
            uow, delete(InboundActivity).where(InboundActivity.received_at < log_cutoff)
        ),
        "usage_events_deleted": await uow.usage.purge_raw(now - timedelta(days=retention.usage_event_days)),
    }
    return counts
