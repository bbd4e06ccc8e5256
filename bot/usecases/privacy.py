"""Forgetting a person and purging data past its retention period: what the privacy promises mean, in dates.

The SQL lives in storage/privacy.py; docs/privacy.md says in plain words what is kept and for how long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.usecases.ports import PrivacyUnitOfWork


async def forget_user(uow: PrivacyUnitOfWork, aad_object_id: str) -> dict[str, int]:
    """Delete every row about one person, in every tenant; returns rows deleted per table.

    Rows keyed by the AAD object id go, and so do the rows hanging off the person's user rows (their chats, asks,
    answer history, outbox rows, "stop these" opt-outs, the activity log of their chats); actions they took as a CSM
    stay, without their name. Per-tenant daily totals stay: they are counts about the organisation, not about a
    person. `aad_object_id` is in its stored form (lower case); older rows in another case of it go too.
    """
    return await uow.privacy.forget(aad_object_id)


@dataclass(frozen=True)
class Retention:
    comment_days: int  # free-text NPS comments (and their edit history) are blanked after this many days
    activity_log_days: int  # the inbound-activity log (retry dedupe) is deleted after this many days
    usage_event_days: int = 30  # raw usage events (kept for dedupe only; rollups stay) are deleted after this many days


async def purge(uow: PrivacyUnitOfWork, retention: Retention, now: datetime) -> dict[str, int]:
    return await uow.privacy.purge(
        comments_before=now - timedelta(days=retention.comment_days),
        activities_before=now - timedelta(days=retention.activity_log_days),
        usage_events_before=now - timedelta(days=retention.usage_event_days),
    )
