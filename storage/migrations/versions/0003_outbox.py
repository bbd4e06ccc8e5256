"""outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

The delivery outbox, per-tenant rate buckets shared by workers, and users" unreachable mark.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("tenant_rates",
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("tokens", sa.Float(), nullable=False),
    sa.Column("updated_epoch", sa.Float(), nullable=False),
    sa.Column("paused_until_epoch", sa.Float(), nullable=False),
    sa.Column("throttled", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_rates"))
    )
    op.create_table("outbox",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("dedupe_key", sa.String(length=200), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("user_id", sa.Integer(), nullable=True),
    sa.Column("conversation_id", sa.String(length=512), nullable=False),
    sa.Column("survey_instance_id", sa.String(length=36), nullable=True),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("leased_by", sa.String(length=64), nullable=True),
    sa.Column("last_status_code", sa.Integer(), nullable=True),
    sa.Column("last_error", sa.String(length=300), nullable=True),
    sa.Column("activity_id", sa.String(length=256), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(["survey_instance_id"], ["survey_instances.id"], name=op.f("fk_outbox_survey_instance_id_survey_instances"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_outbox_tenant_id_tenants"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_outbox_user_id_users"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key"))
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unreachable_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("unreachable_reason", sa.String(length=128), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("unreachable_reason")
        batch_op.drop_column("unreachable_at")

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_user_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_tenant_id"))
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox")
    op.drop_table("tenant_rates")
