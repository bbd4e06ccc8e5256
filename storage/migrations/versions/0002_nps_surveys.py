"""nps surveys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Survey instances, NPS answers with their edit history, pending CSM alerts; users get the NPS snooze/decline.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("survey_instances",
    sa.Column("id", sa.String(length=36), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("user_id", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("locale", sa.String(length=35), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("activity_id", sa.String(length=256), nullable=True),
    sa.Column("forced", sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_survey_instances_tenant_id_tenants"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_survey_instances_user_id_users"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_instances"))
    )
    with op.batch_alter_table("survey_instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survey_instances_sent_at"), ["sent_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_survey_instances_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_survey_instances_user_created", ["user_id", "created_at"], unique=False)

    op.create_table("nps_answers",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("survey_instance_id", sa.String(length=36), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("aad_object_id", sa.String(length=64), nullable=False),
    sa.Column("score", sa.SmallInteger(), nullable=False),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("edits", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["survey_instance_id"], ["survey_instances.id"], name=op.f("fk_nps_answers_survey_instance_id_survey_instances"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_nps_answers")),
    sa.UniqueConstraint("survey_instance_id", "aad_object_id", name="uq_nps_answers_instance_user")
    )
    with op.batch_alter_table("nps_answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nps_answers_aad_object_id"), ["aad_object_id"], unique=False)
        batch_op.create_index("ix_nps_answers_tenant_answered", ["tenant_id", "answered_at"], unique=False)

    op.create_table("pending_alerts",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("survey_instance_id", sa.String(length=36), nullable=False),
    sa.Column("aad_object_id", sa.String(length=64), nullable=False),
    sa.Column("score", sa.SmallInteger(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["survey_instance_id"], ["survey_instances.id"], name=op.f("fk_pending_alerts_survey_instance_id_survey_instances"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_alerts")),
    sa.UniqueConstraint("kind", "survey_instance_id", name="uq_pending_alerts_kind_instance")
    )
    with op.batch_alter_table("pending_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_alerts_aad_object_id"), ["aad_object_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pending_alerts_tenant_id"), ["tenant_id"], unique=False)

    op.create_table("nps_answer_history",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("answer_id", sa.Integer(), nullable=False),
    sa.Column("score", sa.SmallInteger(), nullable=False),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["answer_id"], ["nps_answers.id"], name=op.f("fk_nps_answer_history_answer_id_nps_answers"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_nps_answer_history"))
    )
    with op.batch_alter_table("nps_answer_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nps_answer_history_answer_id"), ["answer_id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nps_declined_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("nps_snoozed_until", sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("nps_snoozed_until")
        batch_op.drop_column("nps_declined_at")

    with op.batch_alter_table("nps_answer_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nps_answer_history_answer_id"))

    op.drop_table("nps_answer_history")
    with op.batch_alter_table("pending_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_alerts_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_pending_alerts_aad_object_id"))

    op.drop_table("pending_alerts")
    with op.batch_alter_table("nps_answers", schema=None) as batch_op:
        batch_op.drop_index("ix_nps_answers_tenant_answered")
        batch_op.drop_index(batch_op.f("ix_nps_answers_aad_object_id"))

    op.drop_table("nps_answers")
    with op.batch_alter_table("survey_instances", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_instances_user_created")
        batch_op.drop_index(batch_op.f("ix_survey_instances_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_survey_instances_sent_at"))

    op.drop_table("survey_instances")
