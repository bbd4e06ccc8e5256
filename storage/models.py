"""SQLAlchemy 2 typed models. The same schema runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations are the same on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 64  # tenant ids and AAD object ids are GUIDs (36); headroom for other formats
ROW_ID_MAX = 2**31 - 1  # row ids are INTEGER: 32 bits on PostgreSQL
CONVERSATION_ID_LENGTH = 512  # Teams conversation ids run to a few hundred characters


def sqlite_seconds(column: str) -> str:
    """SQLite: whole epoch seconds of a stored instant (its text up to the seconds: the fraction would be rounded,
    and could move an instant past midnight). strftime, not unixepoch (SQLite 3.38+): an index that holds it must
    open on any SQLite."""
    return f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER)"


class EpochSeconds(ColumnElement[int]):
    """Whole epoch seconds of a stored instant, in an expression each database accepts for a column it works out
    when a row is written (PostgreSQL: in UTC spelled out, since a bare instant's parts depend on the session's
    zone; SQLite: sqlite_seconds)."""

    inherit_cache = True
    type = BigInteger()

    def __init__(self, column: str) -> None:
        self.column = column


@compiles(EpochSeconds, "sqlite")
def _epoch_seconds_sqlite(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    return sqlite_seconds(element.column)


@compiles(EpochSeconds, "postgresql")
def _epoch_seconds_postgres(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(floor(date_part('epoch', {element.column} AT TIME ZONE 'UTC')) AS BIGINT)"


def on_dialect(dialect: str) -> Callable[..., bool]:
    """Alembic's include_object for a database: leaves out what the models declare for another one (ddl_if)."""

    def include(item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        condition = getattr(item, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)

    return include


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on both databases (SQLite keeps no zone, so it is added back on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Tenant(Base):
    """A Microsoft 365 organisation that installed the app."""

    __tablename__ = "tenants"

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    renewal_date: Mapped[date | None] = mapped_column(Date)  # contract renewal, set by CLI or API
    display_name: Mapped[str | None] = mapped_column(String(200))  # the organisation's name, for CSMs (CLI or API)
    health_score: Mapped[float | None] = mapped_column(Float)  # the last evaluation, to notice a crossing
    at_risk: Mapped[bool | None] = mapped_column(Boolean)
    health_checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class User(Base):
    """One employee, known only by AAD object id within a tenant."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "aad_object_id", name="uq_users_tenant_aad"),
        # SQLite only: its audience query reads people in ranges of AAD object ids from this index alone (it holds
        # all the query reads of a user row, and the install's epoch seconds worked out once, when the row is
        # written: migration 0016), so their profile look-ups go in the order profiles are stored
        # (storage.targeting); PostgreSQL hashes the tables and does without
        Index(
            "ix_users_audience",
            *("aad_object_id", "tenant_id", "locale", "time_zone", "installed_at"),
            *("uninstalled_at", "unreachable_at", "opted_out_at"),
            text(sqlite_seconds("installed_at")),
        ).ddl_if(dialect="sqlite"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id", ondelete="CASCADE"), index=True)
    aad_object_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    locale: Mapped[str | None] = mapped_column(String(35))
    time_zone: Mapped[str | None] = mapped_column(String(64), index=True)  # targeting reads each zone's numbers
    installed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    uninstalled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    nps_declined_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # "don't ask again"
    nps_snoozed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())  # "ask me later"
    unreachable_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # 403/404 from Teams; cleared when back
    unreachable_reason: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ConversationReference(Base):
    """Where the bot can reach a user (personal chat) or a team / channel / group chat, from an authenticated activity.

    Stored field by field rather than botbuilder's serialized reference, which carries display names.
    """

    __tablename__ = "conversation_references"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(CONVERSATION_ID_LENGTH), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(16))  # personal | team | groupChat
    team_id: Mapped[str | None] = mapped_column(String(CONVERSATION_ID_LENGTH))
    channel_id: Mapped[str] = mapped_column(String(32))  # Bot Framework channel, "msteams"
    service_url: Mapped[str] = mapped_column(String(512))
    bot_id: Mapped[str] = mapped_column(String(128))
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class InboundActivity(Base):
    """Every activity accepted, keyed by (conversation, activity id): Teams retries unanswered activities."""

    __tablename__ = "inbound_activities"
    __table_args__ = (
        UniqueConstraint("conversation_id", "activity_id", name="uq_inbound_activities_conversation_activity"),
        Index("ix_inbound_activities_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(CONVERSATION_ID_LENGTH))
    activity_id: Mapped[str] = mapped_column(String(256))
    activity_type: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    aad_object_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SurveyInstance(Base):
    """One ask: a survey card sent (or about to be sent) to one user."""

    __tablename__ = "survey_instances"
    __table_args__ = (Index("ix_survey_instances_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID, carried in the card's action data
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "nps"
    status: Mapped[str] = mapped_column(String(16))  # queued | sent | answered | snoozed | declined | failed
    locale: Mapped[str | None] = mapped_column(String(35))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    activity_id: Mapped[str | None] = mapped_column(String(256))  # the sent card, for in-place updates
    forced: Mapped[bool] = mapped_column(default=False)


class NpsAnswer(Base):
    """The current answer of one person to one ask. Exactly one per (instance, AAD object id)."""

    __tablename__ = "nps_answers"
    __table_args__ = (
        UniqueConstraint("survey_instance_id", "aad_object_id", name="uq_nps_answers_instance_user"),
        Index("ix_nps_answers_tenant_answered", "tenant_id", "answered_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    survey_instance_id: Mapped[str] = mapped_column(ForeignKey("survey_instances.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    aad_object_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    edits: Mapped[int] = mapped_column(Integer, default=0)


class NpsAnswerHistory(Base):
    """Values an edit replaced, so a changed score never silently rewrites the past."""

    __tablename__ = "nps_answer_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    answer_id: Mapped[int] = mapped_column(ForeignKey("nps_answers.id", ondelete="CASCADE"), index=True)
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())  # when these values were first given
    replaced_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PendingAlert(Base):
    """A cause for a CSM alert (a detractor answer) waiting for the alerting engine. One per cause."""

    __tablename__ = "pending_alerts"
    __table_args__ = (
        UniqueConstraint("kind", "survey_instance_id", name="uq_pending_alerts_kind_instance"),
        UniqueConstraint("cause_key", name="uq_pending_alerts_cause_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # "detractor" | "renewal"
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    survey_instance_id: Mapped[str | None] = mapped_column(ForeignKey("survey_instances.id", ondelete="CASCADE"))
    cause_key: Mapped[str | None] = mapped_column(String(200))  # a cause without a survey: renewal:<tenant>:<date>:90
    detail: Mapped[str | None] = mapped_column(String(300))  # the reason in words, for the CSM
    aad_object_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    score: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OutboxMessage(Base):
    """One proactive message to one conversation, and everything known about delivering it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at", "id"),  # id: the claims' tie-break (migration 0012)
        Index("ix_outbox_conversation_sent", "conversation_id", "sent_at"),  # per-conversation limits, shared
        Index("ix_outbox_tenant_due", "tenant_id", "status", "next_attempt_at", "id"),  # claims, a share per tenant
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)  # the same message is never queued twice
    kind: Mapped[str] = mapped_column(String(32))  # nps, nudge, alert …
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(String(CONVERSATION_ID_LENGTH))
    survey_instance_id: Mapped[str | None] = mapped_column(ForeignKey("survey_instances.id", ondelete="CASCADE"))
    payload: Mapped[str] = mapped_column(Text)  # JSON: {"card": {...}, "summary": "..."}
    status: Mapped[str] = mapped_column(String(16))  # queued | sending | sent | failed | unknown | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    leased_by: Mapped[str | None] = mapped_column(String(64))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    activity_id: Mapped[str | None] = mapped_column(String(256))  # Teams' id of the sent card (update / recall)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # send a new card, or change (update) / take back (delete) one sent before, named by target_activity_id
    operation: Mapped[str] = mapped_column(String(16), default="send", server_default="send")
    target_activity_id: Mapped[str | None] = mapped_column(String(256))
    # set (and committed) right before the current attempt's request leaves, cleared with its outcome: a row a dead
    # worker left in `sending` with it may have reached Teams, so it becomes `unknown` instead of being sent again
    attempt_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # the message must not arrive in the recipient's quiet hours or weekend: checked again when it is about to leave
    quiet_hours: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class TenantRate(Base):
    """Who sends to a tenant (one worker at a time, so its rate is the tenant's, whatever the number of processes),
    until when, and since when a new holder may send; also the tenant's pause after a 429 and the 429 count. One row per
    tenant, and one per tenant's Graph installs (epoch seconds keep the SQL portable)."""

    __tablename__ = "tenant_rates"

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    quiet_until_epoch: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    paused_until_epoch: Mapped[float] = mapped_column(Float, default=0.0)
    throttled: Mapped[int] = mapped_column(Integer, default=0)  # 429s seen
    holder: Mapped[str | None] = mapped_column(String(64))  # the delivery worker sending to the tenant
    held_until_epoch: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


# -- usage signals ---------------------------------------------------------------------------------------------------

EVENT_NAME_LENGTH = 100
BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only


class UsageEvent(Base):
    """A raw usage event, kept only to recognise a duplicate during the raw-event retention period.

    Targeting never reads this table (it reads the rollups). Event properties are validated and not stored:
    they are where a vendor's payload could carry names or e-mail addresses.
    """

    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "aad_object_id", "name", "occurred_at", name="uq_usage_events_identity"),
        Index("ix_usage_events_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    aad_object_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    name: Mapped[str] = mapped_column(String(EVENT_NAME_LENGTH))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    day: Mapped[date] = mapped_column(Date)  # the calendar day in the offset the timestamp was sent with
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())


class UsageActivity(Base):
    """The days a person was active, 62 to a row: bit b of word w = active on day 62·w + b (days since 1970-01-01).

    What active-day rules read: a person's last 90 days are two or three rows, not ninety, and counting a window is a
    mask and a popcount (bot.engagement.usage.ActiveDays; storage.targeting does it in SQL). Nothing reads how many
    events a person had on a day, so that is not kept (tenant_usage_daily keeps the tenant's). `added` is scratch
    for the writer: the bits its upsert set that were not set before (the days that became active), read back in
    the same statement under the row lock, so concurrent batches never count a person's day twice.
    """

    __tablename__ = "usage_activity"

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    aad_object_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    word: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bits: Mapped[int] = mapped_column(BigInteger)
    added: Mapped[int] = mapped_column(BigInteger)


class UsageFeature(Base):
    """Lifetime per-person count of one event: milestones and never-used features are read from here."""

    __tablename__ = "usage_features"
    __table_args__ = (
        # keyed by the person's AAD object id first, as usage_profiles (migration 0015)
        PrimaryKeyConstraint("aad_object_id", "tenant_id", "name"),
        Index("ix_usage_features_tenant_name", "tenant_id", "name"),  # a tenant's use of some features (health)
        {"sqlite_with_rowid": False},  # one B-tree search a look-up (migration 0014)
    )

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    aad_object_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    name: Mapped[str] = mapped_column(String(EVENT_NAME_LENGTH))
    total: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_at: Mapped[datetime] = mapped_column(UtcDateTime())


class UsageProfile(Base):
    """What targeting reads about a person in one row: first and last time seen doing anything, and their newest
    active-day words (a copy of their last RECENT_WORDS usage_activity words, kept by the same folds).

    `recent_word` is the newest word the person was active in; `recent_0` holds its bits, `recent_1` the word before,
    and so on. Four words reach back at least 186 days, more than any campaign window (legacy: two windows of at
    most 90 days), so the audience query reads a person's windows here without joining usage_activity.
    """

    __tablename__ = "usage_profiles"
    __table_args__ = (
        # keyed by the person's AAD object id first (migration 0015): SQLite's audience query looks people up in
        # the order of their ids, random as Entra's are, so each look-up lands next to the one before and its key
        # differs from its neighbours' in its first bytes, not after a tenant id everyone in the tenant shares
        PrimaryKeyConstraint("aad_object_id", "tenant_id"),
        Index("ix_usage_profiles_tenant_id", "tenant_id"),  # a tenant's people (adopting the app's users)
        {"sqlite_with_rowid": False},  # one B-tree search a look-up (migration 0014)
    )

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    aad_object_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    events: Mapped[int] = mapped_column(Integer)
    recent_word: Mapped[int] = mapped_column(Integer, server_default="0")
    recent_0: Mapped[int] = mapped_column(BigInteger, server_default="0")
    recent_1: Mapped[int] = mapped_column(BigInteger, server_default="0")
    recent_2: Mapped[int] = mapped_column(BigInteger, server_default="0")
    recent_3: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # last_seen_at's epoch seconds, worked out by the database whenever the row is written (migration 0017): the
    # audience query reads it for every person instead of parsing the instant's text again
    last_seen_second: Mapped[int] = mapped_column(BigInteger, Computed(EpochSeconds("last_seen_at"), persisted=True))


RECENT_WORDS = 4
RECENT_COLUMNS = tuple(f"recent_{k}" for k in range(RECENT_WORDS))  # UsageProfile.recent_0 … recent_3


class TenantUsageDaily(Base):
    """Daily per-tenant rollup: active people and events, added up as batches come in."""

    __tablename__ = "tenant_usage_daily"

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    active_users: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(Integer)


# -- campaigns -------------------------------------------------------------------------------------------------------


class CampaignTouch(Base):
    """One decision to send a campaign step to a person, or to hold it back from them (the holdout group).

    The record behind cooldowns, "send each step once" and the treated-versus-holdout uplift report.
    """

    __tablename__ = "campaign_touches"
    __table_args__ = (
        UniqueConstraint("campaign_id", "tenant_id", "aad_object_id", "step", name="uq_campaign_touches_step"),
        Index("ix_campaign_touches_tenant_user", "tenant_id", "aad_object_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    step: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id", ondelete="CASCADE"))
    aad_object_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    holdout: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(300))
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime())
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))


class CampaignOptOut(Base):
    """A person said "stop these" for one kind of campaign message."""

    __tablename__ = "campaign_optouts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


# -- customer success ------------------------------------------------------------------------------------------------


class CsmAssignment(Base):
    """A CSM assigned to a tenant; `position` orders escalation (0 first). NURTURE_CSM_IDS CSMs see every tenant."""

    __tablename__ = "csm_assignments"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True)
    aad_object_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Alert(Base):
    """A churn-risk alert for a tenant's CSMs: at-risk health, a detractor answer, or a renewal coming up.

    `open_key` equals the cause while the alert is open and is cleared on resolve: the unique constraint on it means
    no second alert for the same cause while one is open (NULLs never collide, on both databases).
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_status_escalate", "status", "escalate_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # at_risk | detractor | renewal
    cause_key: Mapped[str] = mapped_column(String(200))
    open_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    survey_instance_id: Mapped[str | None] = mapped_column(ForeignKey("survey_instances.id", ondelete="CASCADE"))
    score: Mapped[float | None] = mapped_column(Float)  # health score when raised
    reasons: Mapped[str] = mapped_column(Text)  # JSON list of sentences
    status: Mapped[str] = mapped_column(String(16))  # open | claimed | snoozed | resolved
    claimed_by: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    snoozed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalate_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(ID_LENGTH))


class AlertLog(Base):
    """What happened to an alert, by whom: raised, sent, claimed, snoozed, outreach notes, escalated, resolved."""

    __tablename__ = "alert_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str | None] = mapped_column(String(ID_LENGTH))  # a CSM's AAD object id; None for Nurture itself
    action: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
