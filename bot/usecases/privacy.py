"""Forgetting a person and purging data past its retention period."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from storage.models import (
    Alert,
    AlertLog,
    CampaignTouch,
    CsmAssignment,
    InboundActivity,
    NpsAnswer,
    NpsAnswerHistory,
    OutboxMessage,
    PendingAlert,
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
    """Delete every row about one person, in every tenant; returns rows deleted per table (cascades included).

    Rows keyed by the AAD object id are deleted directly (answers, alerts, usage rollups and raw events, campaign
    touches); rows hanging off the user (conversation references, survey asks, answer history, outbox rows,
    "stop these" opt-outs) go with the user through ON DELETE CASCADE. Per-tenant daily totals stay: they are
    counts about the organisation, not about a person.
    """
    session = uow.session
    users = await uow.users.find_by_aad(aad_object_id)
    # usage and touches are keyed (and indexed) by tenant, then person: asked tenant by tenant, each is a few index
    # look-ups instead of a scan of tables that hold a row per person and day or event
    tenants = await _tenants_with_data(uow)
    counts = {
        "pending_alerts": await _rowcount(uow, delete(PendingAlert).where(PendingAlert.aad_object_id == aad_object_id)),
        "nps_answers": await _rowcount(uow, delete(NpsAnswer).where(NpsAnswer.aad_object_id == aad_object_id)),
        "inbound_activities": await _rowcount(
            uow, delete(InboundActivity).where(InboundActivity.aad_object_id == aad_object_id)
        ),
        **{
            model.__tablename__: await _rowcount(
                uow, delete(model).where(model.tenant_id.in_(tenants), model.aad_object_id == aad_object_id)
            )
            for model in (CampaignTouch, UsageEvent, UsageActivity, UsageFeature, UsageProfile)
        },
        "conversation_references": await uow.conversations.delete_for_users([u.id for u in users]) if users else 0,
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
