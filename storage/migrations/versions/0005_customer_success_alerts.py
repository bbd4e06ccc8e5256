"""customer success alerts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Churn-risk alerts and their log, CSM assignments per tenant, tenants' display name and last health evaluation.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("csm_assignments",
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("aad_object_id", sa.String(length=64), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_csm_assignments_tenant_id_tenants"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("tenant_id", "aad_object_id", name=op.f("pk_csm_assignments"))
    )
    op.create_table("alerts",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("cause_key", sa.String(length=200), nullable=False),
    sa.Column("open_key", sa.String(length=200), nullable=True),
    sa.Column("survey_instance_id", sa.String(length=36), nullable=True),
    sa.Column("score", sa.Float(), nullable=True),
    sa.Column("reasons", sa.Text(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("claimed_by", sa.String(length=64), nullable=True),
    sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("escalation_level", sa.Integer(), nullable=False),
    sa.Column("escalate_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_by", sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(["survey_instance_id"], ["survey_instances.id"], name=op.f("fk_alerts_survey_instance_id_survey_instances"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_alerts_tenant_id_tenants"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    sa.UniqueConstraint("open_key", name=op.f("uq_alerts_open_key"))
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_status_escalate", ["status", "escalate_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_tenant_id"), ["tenant_id"], unique=False)

    op.create_table("alert_log",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("alert_id", sa.Integer(), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(length=64), nullable=True),
    sa.Column("action", sa.String(length=16), nullable=False),
    sa.Column("note", sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_alert_log_alert_id_alerts"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_log"))
    )
    with op.batch_alter_table("alert_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_log_alert_id"), ["alert_id"], unique=False)

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("health_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("at_risk", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("health_checked_at", sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("health_checked_at")
        batch_op.drop_column("at_risk")
        batch_op.drop_column("health_score")
        batch_op.drop_column("display_name")

    with op.batch_alter_table("alert_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_log_alert_id"))

    op.drop_table("alert_log")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_tenant_id"))
        batch_op.drop_index("ix_alerts_status_escalate")

    op.drop_table("alerts")
    op.drop_table("csm_assignments")
