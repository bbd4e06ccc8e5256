"""foundation tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Tenants, users, conversation references and the inbound-activity log.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("inbound_activities",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("conversation_id", sa.String(length=512), nullable=False),
    sa.Column("activity_id", sa.String(length=256), nullable=False),
    sa.Column("activity_type", sa.String(length=64), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=True),
    sa.Column("aad_object_id", sa.String(length=64), nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_activities")),
    sa.UniqueConstraint("conversation_id", "activity_id", name="uq_inbound_activities_conversation_activity")
    )
    with op.batch_alter_table("inbound_activities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_activities_aad_object_id"), ["aad_object_id"], unique=False)
        batch_op.create_index("ix_inbound_activities_received_at", ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbound_activities_tenant_id"), ["tenant_id"], unique=False)

    op.create_table("tenants",
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenants"))
    )
    op.create_table("users",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("aad_object_id", sa.String(length=64), nullable=False),
    sa.Column("locale", sa.String(length=35), nullable=True),
    sa.Column("time_zone", sa.String(length=64), nullable=True),
    sa.Column("installed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("uninstalled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_users_tenant_id_tenants"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    sa.UniqueConstraint("tenant_id", "aad_object_id", name="uq_users_tenant_aad")
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_aad_object_id"), ["aad_object_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_users_tenant_id"), ["tenant_id"], unique=False)

    op.create_table("conversation_references",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("conversation_id", sa.String(length=512), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("user_id", sa.Integer(), nullable=True),
    sa.Column("scope", sa.String(length=16), nullable=False),
    sa.Column("team_id", sa.String(length=512), nullable=True),
    sa.Column("channel_id", sa.String(length=32), nullable=False),
    sa.Column("service_url", sa.String(length=512), nullable=False),
    sa.Column("bot_id", sa.String(length=128), nullable=False),
    sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_conversation_references_tenant_id_tenants"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_conversation_references_user_id_users"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_references")),
    sa.UniqueConstraint("conversation_id", name=op.f("uq_conversation_references_conversation_id"))
    )
    with op.batch_alter_table("conversation_references", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversation_references_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversation_references_user_id"), ["user_id"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("conversation_references", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_references_user_id"))
        batch_op.drop_index(batch_op.f("ix_conversation_references_tenant_id"))

    op.drop_table("conversation_references")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_users_aad_object_id"))

    op.drop_table("users")
    op.drop_table("tenants")
    with op.batch_alter_table("inbound_activities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_activities_tenant_id"))
        batch_op.drop_index("ix_inbound_activities_received_at")
        batch_op.drop_index(batch_op.f("ix_inbound_activities_aad_object_id"))

    op.drop_table("inbound_activities")
