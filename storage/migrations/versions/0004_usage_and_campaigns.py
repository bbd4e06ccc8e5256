"""usage and campaigns

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Usage signals (raw events for dedupe, daily per-person and per-tenant rollups, lifetime feature counts, profiles),
campaign touches and "stop these" opt-outs, tenants" renewal dates, and pending alerts without a survey (renewals).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("tenant_usage_daily",
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),
    sa.Column("active_users", sa.Integer(), nullable=False),
    sa.Column("events", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "day", name=op.f("pk_tenant_usage_daily"))
    )
    op.create_table("usage_daily",
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("aad_object_id", sa.String(length=64), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),
    sa.Column("name", sa.String(length=100), nullable=False),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "aad_object_id", "day", "name", name=op.f("pk_usage_daily"))
    )
    with op.batch_alter_table("usage_daily", schema=None) as batch_op:
        batch_op.create_index("ix_usage_daily_tenant_day", ["tenant_id", "day"], unique=False)

    op.create_table("usage_events",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("aad_object_id", sa.String(length=64), nullable=False),
    sa.Column("name", sa.String(length=100), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
    sa.UniqueConstraint("tenant_id", "aad_object_id", "name", "occurred_at", name="uq_usage_events_identity")
    )
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_events_aad_object_id"), ["aad_object_id"], unique=False)
        batch_op.create_index("ix_usage_events_received_at", ["received_at"], unique=False)

    op.create_table("usage_features",
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("aad_object_id", sa.String(length=64), nullable=False),
    sa.Column("name", sa.String(length=100), nullable=False),
    sa.Column("total", sa.Integer(), nullable=False),
    sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "aad_object_id", "name", name=op.f("pk_usage_features"))
    )
    op.create_table("usage_profiles",
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("aad_object_id", sa.String(length=64), nullable=False),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("events", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "aad_object_id", name=op.f("pk_usage_profiles"))
    )
    op.create_table("campaign_optouts",
    sa.Column("user_id", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_campaign_optouts_user_id_users"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("user_id", "kind", name=op.f("pk_campaign_optouts"))
    )
    op.create_table("campaign_touches",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("campaign_id", sa.String(length=64), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("step", sa.String(length=64), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("aad_object_id", sa.String(length=64), nullable=False),
    sa.Column("holdout", sa.Boolean(), nullable=False),
    sa.Column("reason", sa.String(length=300), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outbox_id", sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], name=op.f("fk_campaign_touches_outbox_id_outbox"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_campaign_touches_tenant_id_tenants"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_touches")),
    sa.UniqueConstraint("campaign_id", "tenant_id", "aad_object_id", "step", name="uq_campaign_touches_step")
    )
    with op.batch_alter_table("campaign_touches", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_touches_tenant_user", ["tenant_id", "aad_object_id"], unique=False)

    with op.batch_alter_table("pending_alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cause_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("detail", sa.String(length=300), nullable=True))
        batch_op.alter_column("survey_instance_id",
               existing_type=sa.VARCHAR(length=36),
               nullable=True)
        batch_op.alter_column("aad_object_id",
               existing_type=sa.VARCHAR(length=64),
               nullable=True)
        batch_op.alter_column("score",
               existing_type=sa.SMALLINT(),
               nullable=True)
        batch_op.create_unique_constraint("uq_pending_alerts_cause_key", ["cause_key"])

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("renewal_date", sa.Date(), nullable=True))



def downgrade() -> None:
    op.execute("DELETE FROM pending_alerts WHERE survey_instance_id IS NULL OR aad_object_id IS NULL OR score IS NULL")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("renewal_date")

    with op.batch_alter_table("pending_alerts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_pending_alerts_cause_key", type_="unique")
        batch_op.alter_column("score",
               existing_type=sa.SMALLINT(),
               nullable=False)
        batch_op.alter_column("aad_object_id",
               existing_type=sa.VARCHAR(length=64),
               nullable=False)
        batch_op.alter_column("survey_instance_id",
               existing_type=sa.VARCHAR(length=36),
               nullable=False)
        batch_op.drop_column("detail")
        batch_op.drop_column("cause_key")

    with op.batch_alter_table("campaign_touches", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_touches_tenant_user")

    op.drop_table("campaign_touches")
    op.drop_table("campaign_optouts")
    op.drop_table("usage_profiles")
    op.drop_table("usage_features")
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_events_received_at")
        batch_op.drop_index(batch_op.f("ix_usage_events_aad_object_id"))

    op.drop_table("usage_events")
    with op.batch_alter_table("usage_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_daily_tenant_day")

    op.drop_table("usage_daily")
    op.drop_table("tenant_usage_daily")
